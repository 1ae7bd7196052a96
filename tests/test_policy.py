"""Exporter policies: the catalog, knobs, and user policy files."""
import pytest

from model import CATALOG, KNOBS, PolicyError, load_policy_file
from model.catalog import BROKEN, MUTANTS, REAL_DRIVERS
from properties.claims import load_claims


def test_catalog_has_the_interface_names_and_six_broken_policies():
    assert {"i915", "omapdrm", "udmabuf", "system-heap", "coherent"} <= set(CATALOG)
    assert len(BROKEN) >= 6
    assert len({p.breaks for p in BROKEN}) == len(BROKEN)  # each breaks something different


def test_every_declared_break_is_a_claim():
    claims = load_claims()
    for p in CATALOG.values():
        for c in p.breaks:
            assert c in claims or c.startswith("P-"), (p.name, c)
    for p in (*BROKEN, *MUTANTS):
        assert p.breaks, p.name


def test_real_drivers_are_sourced():
    for p in REAL_DRIVERS:
        assert "corpus" in p.why or "BEGIN-OPTIONAL" in p.why, p.name


def test_policy_file_round_trip(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text('name = "mine"\nbased_on = "udmabuf"\nbreaks = ["END-FLUSH-UNPIN"]\n'
                 '[knobs]\nend_flush = false\nbegin_sync = "none"\n')
    p = load_policy_file(f, CATALOG)
    assert p.name == "mine" and p.end_flush is False and p.begin_sync == "none"
    assert p.end_requires_begin is True  # from udmabuf
    assert p.breaks == ("END-FLUSH-UNPIN",)


@pytest.mark.parametrize("text,needle", [
    ('name = "x"\n[knobs]\nfrobnicate = true\n', "unknown knob 'frobnicate'"),
    ('name = "x"\n[knobs]\nbegin_pins = 3\n', "begin_pins must be true or false"),
    ('name = "x"\n[knobs]\nzap_via = "sideways"\n', "zap_via must be one of"),
    ('[knobs]\nbegin_pins = true\n', "'name' must be a non-empty string"),
    ('name = "x"\ncolour = "red"\n', "unknown key 'colour'"),
    ('name = "x"\nbased_on = "nope"\n', "based_on names no catalog exporter"),
    ('name = \n', "not valid TOML"),
])
def test_bad_policy_files_are_rejected_with_the_file_named(tmp_path, text, needle):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(PolicyError) as e:
        load_policy_file(f, CATALOG)
    assert needle in str(e.value) and str(f) in str(e.value)


def test_knobs_are_documented():
    for k in KNOBS.values():
        assert k.doc, k.name
