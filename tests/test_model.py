"""The model's semantics on the kernel's own examples: the SYNC flag decoding, the mmap size
check, release on the last reference, mappings that outlive their fd, vmap refcounting."""
import pytest

from model import CATALOG, Model, SCOPES, Schema
from model.actions import ACTIONS, SYNC_FLAG_VALUES
from model.constants import ERRNO, FAULT_SIGSEGV
from model.events import event_names
from properties.trace import ReplayError, replay


@pytest.fixture(scope="module")
def ref():
    return Model(CATALOG["reference"], "small")


def run(model, *calls):
    return replay(model, [(name, args) for name, args in calls])


def exported(model):
    return [("dma_buf_export", dict(buf=0)), ("dma_buf_fd", dict(buf=0))]


@pytest.mark.parametrize("flags", SYNC_FLAG_VALUES)
def test_sync_flags_decoded_as_dma_buf_ioctl_does(ref, flags):
    t = run(ref, *exported(ref), ("ioctl_sync", dict(fd=0, flags=flags)))
    ret = t.steps[-1].ret
    if flags in (1, 2, 3, 5, 6, 7):
        assert ret == 0
    else:  # 0, 4, 8 and all-ones (IGT test_invalid_sync_flags)
        assert ret == -ERRNO["EINVAL"]
        assert t.steps[-1].state == t.steps[-2].state


def test_sync_on_a_closed_fd_is_ebadf(ref):
    t = run(ref, ("ioctl_sync", dict(fd=1, flags=1)))
    assert t.steps[-1].ret == -ERRNO["EBADF"]


@pytest.mark.parametrize("pgoff,npages,ok", [(0, 2, True), (0, 3, False), (1, 2, False), (1, 1, True), (2, 1, False)])
def test_mmap_size_check(ref, pgoff, npages, ok):
    t = run(ref, *exported(ref), ("mmap", dict(fd=0, pgoff=pgoff, npages=npages)))
    assert (t.steps[-1].ret == 0) == ok
    if not ok:
        assert t.steps[-1].ret == -ERRNO["EINVAL"]


def test_last_close_releases_exactly_once(ref):
    t = run(ref, *exported(ref), ("dup", dict(fd=0)), ("close", dict(fd=0)), ("close", dict(fd=1)),
            ("close", dict(fd=1)))
    assert [("release" in event_names(s.events)) for s in t.steps] == [False, False, False, False, True, False]
    assert t.steps[-1].ret == -ERRNO["EBADF"]
    d = ref.schema.as_dict(t.steps[-1].state)
    assert d["life"] == [2] and d["release_calls"] == [1]


def test_mapping_outlives_its_fd(ref):
    t = run(ref, *exported(ref), ("mmap", dict(fd=0, pgoff=0, npages=1)), ("close", dict(fd=0)),
            ("cpu_read", dict(vma=0, page=0)), ("munmap", dict(vma=0)))
    assert t.steps[3].ret == 0 and "release" not in event_names(t.steps[3].events)
    assert t.steps[4].ret == 0
    assert "release" in event_names(t.steps[5].events)


def test_access_outside_a_mapping_faults(ref):
    t = run(ref, *exported(ref), ("mmap", dict(fd=0, pgoff=1, npages=1)), ("cpu_read", dict(vma=0, page=1)))
    assert t.steps[-1].ret == FAULT_SIGSEGV


def test_vmap_refcounted_by_the_core(ref):
    t = run(ref, ("dma_buf_export", dict(buf=0)), ("dma_buf_vmap", dict(buf=0)),
            ("dma_buf_vmap", dict(buf=0)), ("dma_buf_vunmap", dict(buf=0)))
    d = ref.schema.as_dict(t.steps[-1].state)
    assert d["vmapping_counter"] == [1] and d["exp_vmaps"] == [1]


def test_kernel_calls_need_a_reference(ref):
    with pytest.raises(ReplayError, match="step 1: .*not enabled"):
        run(ref, ("dma_buf_kmap", dict(buf=0, page=0)))


def test_find_rejects_unknown_and_out_of_scope(ref):
    with pytest.raises(KeyError, match="unknown action"):
        ref.find("dma_buf_frobnicate")
    with pytest.raises(KeyError, match="outside the scope"):
        ref.find("dma_buf_kmap", buf=5, page=0)
    with pytest.raises(KeyError, match="no parameter"):
        ref.find("close", fd=0, buf=0)


def test_interrupted_fence_wait_restarts(ref):
    setup = [("dma_buf_export", dict(buf=0)), ("dma_buf_attach", dict(buf=0)),
             ("dma_buf_map_attachment", dict(att=0, direction=0)),
             ("reservation_object_add_excl_fence", dict(buf=0)), ("dma_buf_fd", dict(buf=0))]
    t = run(ref, *setup, ("ioctl_sync", dict(fd=0, flags=1, interrupted=True)),
            ("ioctl_sync", dict(fd=0, flags=1)))
    assert t.steps[-2].ret == -ERRNO["EINTR"]
    assert t.steps[-1].ret == 0
    assert ref.schema.as_dict(t.steps[-1].state)["fence"] == [0]


def test_read_waits_for_the_exclusive_fence_only(ref):
    setup = [("dma_buf_export", dict(buf=0)), ("dma_buf_attach", dict(buf=0)),
             ("dma_buf_map_attachment", dict(att=0, direction=0)),
             ("reservation_object_add_shared_fence", dict(buf=0)), ("dma_buf_fd", dict(buf=0))]
    t = run(ref, *setup, ("ioctl_sync", dict(fd=0, flags=1, interrupted=True)))
    assert t.steps[-1].ret == 0  # READ does not wait for a shared fence
    t = run(ref, *setup, ("ioctl_sync", dict(fd=0, flags=2, interrupted=True)))
    assert t.steps[-1].ret == -ERRNO["EINTR"]  # WRITE waits for all fences


def test_every_state_stays_within_the_schema():
    import random

    rng = random.Random(3)
    for name in ("omapdrm", "i915", "mutant-no-size-check"):
        m = Model(CATALOG[name], "default")
        for _ in range(30):
            s = m.init
            for _ in range(30):
                i, s, *_ = rng.choice(list(m.successors(s)))
                m.schema.check(s)


def test_every_action_has_instances_in_every_scope():
    for scope in SCOPES.values():
        for revision in ("v4.11", "v5.12"):
            m = Model(CATALOG["reference"], scope, revision)
            assert set(m.by_name) == {a for a, spec in ACTIONS.items() if revision in spec.revisions}
            assert len(Schema(scope).names) == m.schema.width


def test_every_disabled_step_says_why_from_the_model():
    """Guards carry their reasons (Step.require): every instance that cannot be taken in a state
    gets the reason of the conjunct that is false, never the generic fallback."""
    import random

    from model.catalog import CATALOG
    from model.machine import Model

    rng = random.Random(4)
    for revision in ("v4.11", "v5.12"):
        model = Model(CATALOG["omapdrm"], "small", revision)
        state, seen = model.init, 0
        for _ in range(300):
            for i in range(len(model.instances)):
                if not model.enabled(state, i):
                    why = model.why_disabled(state, i)
                    assert why != "its guard is false in this state" and "{" not in why, (model.instances[i], why)
                    seen += 1
            nxt = [r for r in model.successors(state)]
            state = rng.choice(nxt)[1] if nxt and rng.random() < 0.95 else model.init
        assert seen > 1000
    m = Model(CATALOG["omapdrm"], "small")
    assert m.why_disabled(m.init, m.find("dma_buf_kmap", buf=0, page=0).index) == \
        "buffer 0 is not exported yet (dma_buf_export first)"
