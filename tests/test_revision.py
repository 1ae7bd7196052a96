"""The later revision (v5.12): the action set, dma_buf_pin, the semantic switches, and the
properties of the M- claims, which fire on an exporter that still pins in begin and hold on one
that does not."""
import pytest

from model import CATALOG, Model
from model.actions import ACTIONS
from model.constants import ERRNO
from properties.index import PROPERTIES
from properties.claims import load_claims
from properties.engines.hypothesis_engine import run_hypothesis
from properties.claims import CHANGES, CLAIM_REVISIONS
from properties.monitor import Monitor
from properties.trace import ReplayError, replay

KMAPS = {"dma_buf_kmap", "dma_buf_kunmap", "dma_buf_kmap_atomic", "dma_buf_kunmap_atomic"}
PINS = {"dma_buf_pin", "dma_buf_unpin"}
V6_12_ACTIONS = {"dma_resv_lock", "dma_resv_unlock", "dma_buf_map_attachment_unlocked", "dma_buf_unmap_attachment_unlocked",
                 "dma_buf_vmap_unlocked", "dma_buf_vunmap_unlocked", "dma_buf_dynamic_attach", "exporter_move"}


def model(name, revision="v5.12", scope="tiny"):
    return Model(CATALOG[name], scope, revision)


def test_action_sets_by_revision():
    old, new = model("reference", "v4.11"), model("reference", "v5.12")
    assert KMAPS <= set(old.by_name) and not PINS & set(old.by_name)
    assert PINS <= set(new.by_name) and not KMAPS & set(new.by_name)
    assert set(old.by_name) - KMAPS == set(new.by_name) - PINS
    with pytest.raises(KeyError, match="does not exist at revision v5.12"):
        new.find("dma_buf_kmap", buf=0, page=0)


def test_dma_buf_pin_holds_swappable_storage_until_unpinned():
    m = model("broken-kmap-unpinned")  # swappable storage, begin takes no pin
    assert m.policy.swappable and not m.policy.begin_pins
    t = replay(m, [("dma_buf_export", dict(buf=0)), ("dma_buf_attach", dict(buf=0)),
                   ("dma_buf_pin", dict(att=0)), ("reclaim", dict(buf=0)),
                   ("dma_buf_unpin", dict(att=0)), ("reclaim", dict(buf=0))])
    rets = [s.ret for s in t.steps]
    assert rets == [0, 0, 0, -ERRNO["EBUSY"], 0, 0]
    d = m.schema.as_dict(t.steps[2].state)
    assert d["att_pins"] == [1] and d["resident"] == [True]
    assert m.schema.as_dict(t.steps[-1].state)["resident"] == [False]
    mon = Monitor(m, PROPERTIES)
    assert mon.fires(t, "W-PIN-HOLDS")


def test_unpin_without_pin_is_not_part_of_the_api():
    m = model("reference")
    with pytest.raises(ReplayError, match="step 3: .*not enabled"):
        replay(m, [("dma_buf_export", dict(buf=0)), ("dma_buf_attach", dict(buf=0)),
                   ("dma_buf_unpin", dict(att=0))])


def test_detach_while_pinned_is_reported():
    m = model("reference")
    t = replay(m, [("dma_buf_export", dict(buf=0)), ("dma_buf_attach", dict(buf=0)),
                   ("dma_buf_pin", dict(att=0)), ("dma_buf_detach", dict(att=0))])
    assert Monitor(m, PROPERTIES).fires(t, "P-DETACH-PINNED")
    assert m.schema.as_dict(t.steps[-1].state)["att_pins"] == [0]


def test_vmap_without_ops_vmap_errno_switch():
    calls = [("dma_buf_export", dict(buf=0)), ("dma_buf_vmap", dict(buf=0))]
    assert replay(model("omapdrm", "v4.11"), calls).steps[-1].ret == -ERRNO["ENOMEM"]
    assert replay(model("omapdrm", "v5.12"), calls).steps[-1].ret == -ERRNO["EINVAL"]


def test_kended_ghost_kept_at_v4_11_only():
    calls = [("dma_buf_export", dict(buf=0)),
             ("dma_buf_begin_cpu_access", dict(buf=0, direction=0)),
             ("dma_buf_end_cpu_access", dict(buf=0, direction=0))]
    for revision, kept in (("v4.11", True), ("v5.12", False)):
        m = model("reference", revision)
        assert m.schema.as_dict(replay(m, calls).steps[-1].state)["kended"] == [kept]


SYNC_START = [("dma_buf_export", dict(buf=0)), ("dma_buf_fd", dict(buf=0)),
              ("ioctl_sync", dict(fd=0, flags=3))]


@pytest.mark.parametrize("name,fires", [
    ("omapdrm", True),               # begin pins swappable storage
    ("broken-kmap-unpinned", False),  # swappable, begin takes no pin
    ("reference", False),
])
def test_m_properties_judge_a_pin_in_begin(name, fires):
    m = model(name)
    mon = Monitor(m, PROPERTIES)
    t = replay(m, SYNC_START)
    assert t.steps[-1].ret == 0
    assert mon.fires(t, "P-BEGIN-NO-PIN") is fires
    assert mon.fires(t, "P-USER-NO-PIN") is fires


def test_end_undo_fires_when_end_keeps_the_pin():
    calls = SYNC_START + [("ioctl_sync", dict(fd=0, flags=7))]
    for name, fires in (("broken-end-keeps-pin", True), ("omapdrm", False)):
        m = model(name)
        assert Monitor(m, PROPERTIES).fires(replay(m, calls), "P-END-UNDO") is fires


def test_properties_filtered_by_revision():
    old = {p.prop.id for p in Monitor(model("omapdrm", "v4.11"), PROPERTIES).inv_state
           + Monitor(model("omapdrm", "v4.11"), PROPERTIES).inv_step}
    new_mon = Monitor(model("omapdrm", "v5.12"), PROPERTIES)
    new = {c.prop.id for c in new_mon.inv_state + new_mon.inv_step}
    assert {"P-KMAP-SUCCEEDS", "P-NO-USER-PIN", "P-END-UNPINS", "P-BEGIN-AVAILABLE"} <= old - new
    assert {"P-BEGIN-NO-PIN", "P-USER-NO-PIN", "P-END-UNDO", "P-NO-KMAP"} <= new - old
    ids = {p.id for p in new_mon.props}
    assert "W-DMA-BUF-PIN" in ids and "W-DMA-BUF-KMAP" not in ids
    # omapdrm has no vmap: at v5.12 no kernel load can succeed, so the witness does not apply
    assert "W-KERNEL-READ" not in ids
    assert "W-KERNEL-READ" in {p.id for p in Monitor(model("omapdrm", "v4.11"), PROPERTIES).props}


def test_every_claim_names_its_revisions_and_properties_stay_inside_them():
    claims = load_claims()
    assert set(CLAIM_REVISIONS) == set(claims) == set(CHANGES)
    for cid, c in claims.items():
        # the seed's claims are in the v4.11 text; the later revision's (M-*) from v5.12 on, the
        # v6.12 revision's (L-*, R-*) in v6.12's only
        assert c.revisions == CLAIM_REVISIONS[cid]
        if cid.startswith("M-"):
            assert c.revisions == ("v5.12", "v6.12")
        elif cid.startswith(("L-", "R-")):
            assert c.revisions == ("v6.12",)
        else:
            assert "v4.11" in c.revisions
    for p in PROPERTIES:
        allowed = set().union(*(CLAIM_REVISIONS[c] for c in p.claims))
        assert set(p.revisions) <= allowed, p.id
    for a, spec in ACTIONS.items():
        assert spec.revisions == (("v4.11",) if a in KMAPS else ("v5.12", "v6.12") if a in PINS
                                  else ("v6.12",) if a in V6_12_ACTIONS else ("v4.11", "v5.12", "v6.12"))


def test_hypothesis_finds_the_m_claims_broken_by_omapdrm_only():
    m_props = [p for p in PROPERTIES if any(c.startswith("M-") for c in p.claims) and p.target_is_bad]
    for name, broken in (("omapdrm", {"P-BEGIN-NO-PIN", "P-USER-NO-PIN"}), ("broken-kmap-unpinned", set())):
        vs = run_hypothesis(model(name), m_props, examples=40, seed=1, steps=12)
        assert {v.property for v in vs if v.verdict == "violated"} == broken
        for v in vs:
            if v.verdict == "violated":
                assert Monitor(model(name), m_props).fires(v.trace, v.property)
