"""The review's HTML in a real headless browser (Debian's chromium): it renders (the DOM has the
summary), it references nothing outside the file, and every internal link lands on an element.
Kept fast: one exporter on the tiny scope, the explicit engine within a small state budget."""
import os
import re
import shutil
import subprocess

import pytest

from model.catalog import CATALOG
from model.scope import SCOPES
from properties.report.review import ReviewConfig, collect
from properties.report.review_render import write_review

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian package `chromium`; `make browser-setup` installs "
                             "it, as CI does): the review HTML cannot be checked in a headless browser")


@pytest.fixture(scope="module")
def dom(tmp_path_factory):
    out = tmp_path_factory.mktemp("review")
    data = collect(ReviewConfig(scope=SCOPES["tiny"], seed=1, states=3000, timeout=20, engines=("explicit", "arith"),
                                exporters=(CATALOG["omapdrm"],), jobs=1))
    page = write_review(data, out)["html"]
    profile = tmp_path_factory.mktemp("chromium-profile")
    p = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri()],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


def test_it_renders_with_the_summary_first(dom):
    assert "<body" in dom and 'id="summary"' in dom
    assert dom.index('id="summary"') < dom.index('id="findings"') < dom.index('id="traces"')
    assert "proposed action" in dom and "core defect" in dom
    assert "<details" in dom                      # per-exporter detail, collapsed


def test_no_external_reference(dom):
    assert not re.search(r'\s(?:src|href)="(?:https?:)?//', dom)
    assert not re.search(r"url\(\s*['\"]?(?:https?:)?//", dom) and "@import" not in dom
    assert "<script" not in dom and "<link" not in dom and "<img" not in dom and "<iframe" not in dom
    assert not re.search(r'\s(?:src|href)="(?!#)', dom)          # every reference is an anchor in the file


def test_every_internal_link_resolves(dom):
    ids = set(re.findall(r'\sid="([^"]+)"', dom))
    hrefs = re.findall(r'\shref="#([^"]*)"', dom)
    assert len(hrefs) > 20
    assert sorted(set(hrefs) - ids) == []
    assert "summary" in hrefs                     # the traces lead back to the summary
