"""The model's semantics on the kernel's own examples: the SYNC flag decoding, the mmap size
check, release on the last reference, mappings that outlive their fd, vmap refcounting."""
import pytest

from model import CATALOG, Model, SCOPES, Schema
from model.actions import ACTIONS, SYNC_FLAG_VALUES
from model.constants import ERRNO, FAULT_SIGSEGV
from model.events import event_names
from properties.index import PROPERTIES
from properties.monitor import Monitor
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
            assert Schema(scope, revision).names == m.schema.names
            # v5.12's state is v4.11's plus the core's cached mapping of each attachment
            extra = set(m.schema.names) - set(Schema(scope).names)
            assert extra == (set() if revision == "v4.11" else
                             {f"{f}[{a}]" for f in ("att_sgt", "att_dir") for a in range(scope.attachments)})


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


# --- value arguments outside the scope: any value of the C type, the kernel's answer -----------

U64 = (1 << 64) - 1


def _kernel_mmap(pgoff, npages, pages, revision):
    """What userspace mmap returns, restated from the C code in 64-bit unsigned arithmetic:
    mm/mmap.c do_mmap (and get_unmapped_area, file_mmap_ok from v4.17), then
    dma_buf_mmap_internal (corpus §3.2)."""
    length = npages << 12
    if length == 0:
        return -ERRNO["EINVAL"]                          # if (!len)
    if (pgoff + (length >> 12)) & U64 < pgoff:
        return -ERRNO["EOVERFLOW"]                       # offset overflow?
    if length > (1 << 47) - 4096:
        return -ERRNO["ENOMEM"]                          # len > TASK_SIZE
    if revision != "v4.11" and pgoff > ((U64 - length) & U64) >> 12:
        return -ERRNO["EOVERFLOW"]                       # !file_mmap_ok(), maxsize = ULONG_MAX
    if (pgoff + npages) & U64 > pages:
        return -ERRNO["EINVAL"]                          # vm_pgoff + vma_pages > size >> PAGE_SHIFT
    return 0


BIG = (0, 1, 2, 3, 100, (1 << 35) - 1, 1 << 35, (1 << 51) - 1, (1 << 52) - 2, (1 << 52) - 1,
       1 << 63, U64 - 3, U64 - 1, U64)


@pytest.mark.parametrize("revision", ["v4.11", "v5.12"])
def test_mmap_answers_every_value_as_the_kernel_does(revision):
    model = Model(CATALOG["i915"], "small", revision)
    state = run(model, *exported(model)).states()[-1]
    differ = []
    for pgoff in BIG:
        for npages in [n for n in BIG if n <= (1 << 52) - 1]:
            r = model.step(state, model.find("mmap", fd=0, pgoff=pgoff, npages=npages).index)
            if r[1] != _kernel_mmap(pgoff, npages, 2, revision):
                differ.append((pgoff, npages, r[1]))
    assert not differ
    # the revisions differ on a byte range past ULONG_MAX whose page count does not wrap
    assert model.step(state, model.find("mmap", fd=0, pgoff=(1 << 52) - 1, npages=2).index)[1] == \
        (-ERRNO["EINVAL"] if revision == "v4.11" else -ERRNO["EOVERFLOW"])


def test_sync_flags_outside_the_scope_are_decoded_too(ref):
    state = run(ref, *exported(ref)).states()[-1]
    for flags in (9, 0x10, 1 << 63, (1 << 63) | 1, (1 << 63) | 7, U64 - 7):
        r = ref.step(state, ref.find("ioctl_sync", fd=0, flags=flags).index)
        assert r[1] == -ERRNO["EINVAL"] and event_names(r[2]) == ["from_user", "sync_bad_flags"], flags


def test_instances_outside_the_scope_are_made_once_and_never_enumerated():
    model = Model(CATALOG["reference"], "small")
    n = len(model.instances)
    a = model.find("ioctl_sync", fd=0, flags=9)
    assert a.index >= n and model.find("ioctl_sync", fd=0, flags=9) is a
    assert str(a) == "ioctl_sync(fd=0, flags=9)"
    b = model.find("mmap", fd=1, pgoff=1 << 40, npages=1)
    assert b.index == a.index + 1 and str(b) == "mmap(fd=1, pgoff=0x10000000000, npages=1)"
    assert len(model.instances) == n
    state = model.init
    assert all(i < n for i, *_ in model.successors(state))
    assert all(i < n for i in model.enabled_instances(state))
    # in-scope values still give the scope's instance
    assert model.find("ioctl_sync", fd=0, flags=1).index < n


@pytest.mark.parametrize("args, msg", [
    (("ioctl_sync", dict(fd=0, flags=-1)), "flags=-1 is outside the range of __u64"),
    (("ioctl_sync", dict(fd=0, flags=1 << 64)), "is outside the range of __u64"),
    (("mmap", dict(fd=0, pgoff=-1, npages=1)), "pgoff=-1 is outside the range of unsigned long"),
    (("mmap", dict(fd=0, pgoff=0, npages=1 << 52)), "npages=4503599627370496 is outside the range"),
    (("mmap", dict(fd=2, pgoff=0, npages=100)), "mmap: fd=2 is outside the scope small"),
])
def test_find_bounds_values_by_their_c_type_and_handles_by_the_scope(ref, args, msg):
    with pytest.raises(KeyError, match=msg):
        ref.find(args[0], **args[1])


def test_a_value_the_state_would_keep_outside_the_scope_is_refused(ref):
    mutant = Model(CATALOG["mutant-no-size-check"], "small")
    with pytest.raises(ReplayError, match=r"step 3: mmap\(fd=0, pgoff=0, npages=100\) would keep "
                                          r"vma_npages\[0\]=100 in the state, outside the scope small"):
        run(mutant, *exported(mutant), ("mmap", dict(fd=0, pgoff=0, npages=100)))
    # the same call on a core with the size check fails before anything is kept
    assert run(ref, *exported(ref), ("mmap", dict(fd=0, pgoff=0, npages=100))).steps[-1].ret == -ERRNO["EINVAL"]


def test_the_monitor_checks_steps_outside_the_scope(ref):
    mon = Monitor(ref, PROPERTIES)
    state = run(ref, *exported(ref)).states()[-1]
    inst = ref.find("ioctl_sync", fd=0, flags=9)
    nxt, ret, ev, buf = ref.step(state, inst.index)
    assert mon.bad_step(inst.index, state, nxt, ret, ev, buf) == []
    # a SYNC with bad flags that returned 0 would break P-SYNC-FLAGS, as on a scope instance
    assert "P-SYNC-FLAGS" in mon.bad_step(inst.index, state, nxt, 0, ev, buf)
    scoped = ref.find("ioctl_sync", fd=0, flags=8)
    assert mon.bad_step(scoped.index, state, nxt, 0, ev, buf) == mon.bad_step(inst.index, state, nxt, 0, ev, buf)
