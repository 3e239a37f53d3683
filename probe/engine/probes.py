"""The probes: small objects in an ordered registry.

A probe runs in a child process (see _worker). It announces each risky step on the
result pipe *before* doing it, so a crash still tells the parent how far it got.
Its `run` returns the value the generated code returned (or None for probes that
only map). Every mmap/mprotect/open names its role (_context): a refused step under
test raises Refused and becomes `denied`; a failed setup step raises SetupFailed and
becomes `error`.
"""

import os
from types import ModuleType

from probe.engine import arch as _arch
from probe.platform import libc as _libc
from probe.engine.context import (  # noqa: F401 - re-exported: probes and tests name them here
    ORIGINAL, PATCHED, SETUP, UNDER_TEST, Context, ExecDropped, Refused, SetupFailed, WrongValue)
from probe.engine.live_code import live_code, temp_fd
from probe.platform.libc import MAP_PRIVATE, MAP_SHARED, PAGESIZE, RW, RWX, RX
from probe.engine.stack import stack_page as _stack_page


class Probe:
    """One strategy. Subclasses set id/description and implement run(ctx)."""

    id = None
    description = ""
    expected = ORIGINAL        # value the code must return; None: nothing is called
    needs_code = True          # needs a machine-code entry for this CPU
    # What the rest of the program needs to know about the probe: the memory it works on
    # (probe.vocab.MEMORY_KINDS), the summary capability it feeds and the strategy it
    # belongs to (probe.vocab.CAPABILITIES, probe.vocab.STRATEGIES; None: none).
    memory = None
    capability = None
    strategy = None

    def skip_reason(self, arch: "_arch.Arch | None", impl: ModuleType) -> "str | None":
        """Why this probe cannot apply here, or None."""
        if self.needs_code and arch is None:
            return "no machine code for this CPU in memprobe's table"
        return None

    def run(self, ctx: Context) -> "int | None":
        raise NotImplementedError


REGISTRY = []


def register(cls: type) -> type:
    REGISTRY.append(cls())
    return cls


def by_id() -> dict:
    return {p.id: p for p in REGISTRY}


@register
class ExecRW(Probe):
    id = "exec_rw"
    memory = "anon"
    capability = "nx"
    strategy = None
    description = "write code to anonymous RW memory and call it (crashes where NX works)"

    def run(self, ctx: Context) -> "int | None":
        addr = ctx.anon(SETUP, "mmap_rw", RW)
        ctx.write_code("write", addr)
        return ctx.call("call", addr)


@register
class FlipRWRX(Probe):
    id = "flip_rw_rx"
    memory = "anon"
    capability = "wx_flip"
    strategy = "wx_flip"
    description = "mmap RW, write, mprotect RX, call (W^X flipping: LuaJIT, SpiderMonkey, Wasmtime)"

    def run(self, ctx: Context) -> "int | None":
        addr = ctx.anon(SETUP, "mmap_rw", RW)
        ctx.write_code("write", addr)
        ctx.mprotect(UNDER_TEST, "mprotect_rx", addr, PAGESIZE, RX)
        return ctx.call("call", addr)


@register
class MapRWX(Probe):
    id = "map_rwx"
    memory = "anon"
    capability = "rwx_mapping"
    strategy = "rwx_mapping"
    description = "mmap RWX, write, call (HotSpot code cache, PyPy)"

    def run(self, ctx: Context) -> "int | None":
        addr = ctx.anon(UNDER_TEST, "mmap_rwx", RWX)
        ctx.write_code("write", addr)
        return ctx.call("call", addr)


@register
class FlipRWRWX(Probe):
    id = "flip_rw_rwx"
    memory = "anon"
    capability = "rwx_flip"
    strategy = "rwx_flip"
    description = "mmap RW, mprotect RWX, write, call (V8/node's default --write-code-using-rwx)"

    def run(self, ctx: Context) -> "int | None":
        addr = ctx.anon(SETUP, "mmap_rw", RW)
        ctx.mprotect(UNDER_TEST, "mprotect_rwx", addr, PAGESIZE, RWX)
        ctx.write_code("write", addr)
        return ctx.call("call", addr)


@register
class MapRX(Probe):
    id = "map_rx"
    memory = "anon"
    capability = "rx_mapping"
    strategy = None
    description = "mmap anonymous RX only (no write, no call): the mapping itself is the test"
    expected = None
    needs_code = False

    def run(self, ctx: Context) -> "int | None":
        ctx.anon(UNDER_TEST, "mmap_rx", RX)


@register
class MprotectRXNoop(Probe):
    id = "mprotect_rx_noop"
    memory = "anon"
    capability = None
    strategy = None
    description = "mmap anonymous RX, then mprotect it RX again (a no-op only seccomp filters refuse)"
    expected = None
    needs_code = False

    def run(self, ctx: Context) -> "int | None":
        # The RX mmap is under test too: SELinux execmem refuses it, and that is the verdict.
        addr = ctx.anon(UNDER_TEST, "mmap_rx", RX)
        ctx.mprotect(UNDER_TEST, "mprotect_rx", addr, PAGESIZE, RX)


@register
class RepatchRX(Probe):
    id = "repatch_rx"
    memory = "anon"
    capability = "code_repatching"
    strategy = "code_repatching"
    description = ("live RX code (flipped, else mapped from a memfd or file) -> mprotect RW -> "
                   "patch to 42 -> mprotect RX -> call")
    expected = PATCHED

    def run(self, ctx: Context) -> "int | None":
        addr = live_code(ctx)
        ctx.mprotect(UNDER_TEST, "mprotect_rw", addr, PAGESIZE, RW)
        ctx.write_code("patch", addr, PATCHED)
        ctx.mprotect(UNDER_TEST, "mprotect_rx_again", addr, PAGESIZE, RX)
        return ctx.call("call", addr)


@register
class PatchRWX(Probe):
    id = "patch_rwx"
    memory = "anon"
    capability = "rwx_patching"
    strategy = "code_repatching"
    description = ("live RX code (flipped, else mapped from a memfd or file) -> mprotect RWX -> "
                   "patch while executable (inline caching) -> call")
    expected = PATCHED

    def run(self, ctx: Context) -> "int | None":
        addr = live_code(ctx)
        ctx.mprotect(UNDER_TEST, "mprotect_rwx", addr, PAGESIZE, RWX)
        ctx.write_code("patch", addr, PATCHED)
        return ctx.call("call", addr)


class _DualMap(Probe):
    """One object, two views: write through RW (MAP_SHARED), call through RX.

    Creating the object is under test where it is the strategy's own call (memfd_create,
    shm_open); the RW view is setup; the RX view is what policies refuse."""

    open_role = UNDER_TEST

    def open(self, ctx: Context) -> int:
        raise NotImplementedError

    def run(self, ctx: Context) -> "int | None":
        fd = ctx.run(self.open_role, "open", self.open, ctx, new_fd=True)
        try:
            ctx.within(SETUP, "open", os.ftruncate, fd, PAGESIZE)
            rw = ctx.mmap(SETUP, "mmap_rw_view", PAGESIZE, RW, MAP_SHARED, fd)
            rx = ctx.mmap(UNDER_TEST, "mmap_rx_view", PAGESIZE, RX, MAP_SHARED, fd)
        finally:
            os.close(fd)
        ctx.write_code("write", rw, flush_at=rx)
        return ctx.call("call", rx)


@register
class DualMapMemfd(_DualMap):
    id = "dual_map_memfd"
    memory = "memfd"
    capability = "dual_mapping"
    strategy = "dual_mapping"
    description = "memfd_create, RW view + RX view (MAP_SHARED): write via RW, call via RX (.NET)"

    def open(self, ctx: Context) -> int:
        return ctx.impl.memfd(0)


@register
class DualMapShm(_DualMap):
    id = "dual_map_shm"
    memory = "shm"
    capability = "dual_mapping"
    strategy = "dual_mapping"
    description = "the same through a POSIX shared-memory object (shm_open; SHM_ANON on FreeBSD)"

    def open(self, ctx: Context) -> int:
        return ctx.impl.shm_fd(0)


@register
class DualMapFile(_DualMap):
    id = "dual_map_file"
    memory = "file"
    capability = "dual_mapping"
    strategy = "dual_mapping"
    description = "the same through a temporary file in $TMPDIR (libffi's fallback)"
    open_role = SETUP     # the temporary file is memprobe's; mapping it RX is the test

    def open(self, ctx: Context) -> int:
        return temp_fd(b"\0" * PAGESIZE)


HEAP_BLOCK = 256   # small enough to come from the brk heap, not an mmap'd chunk


@register
class ExecHeap(Probe):
    id = "exec_heap"
    memory = "heap"
    capability = "heap_nx"
    strategy = None
    description = "code in malloc'd memory, called as is (crashes where the heap is not executable)"

    def run(self, ctx: Context) -> "int | None":
        addr = ctx.run(SETUP, "malloc", _libc.malloc, HEAP_BLOCK)
        ctx.readback("malloc", addr, 0)
        ctx.write_code("write", addr)
        return ctx.call("call", addr)


@register
class FlipHeap(Probe):
    id = "flip_heap"
    memory = "heap"
    capability = "heap_flip"
    strategy = None
    description = "code in malloc'd memory after mprotect of its page(s) to RWX"

    def run(self, ctx: Context) -> "int | None":
        addr = ctx.run(SETUP, "malloc", _libc.malloc, HEAP_BLOCK)
        start = _libc.page_floor(addr)
        size = _libc.round_pages(addr + HEAP_BLOCK - start)
        ctx.mprotect(UNDER_TEST, "mprotect_rwx", start, size, RWX)
        ctx.write_code("write", addr)
        return ctx.call("call", addr)


@register
class ExecStack(Probe):
    id = "exec_stack"
    memory = "stack"
    capability = "stack_nx"
    strategy = None
    description = "code on the main thread's stack mapping, called as is"

    def run(self, ctx: Context) -> "int | None":
        addr = ctx.run(SETUP, "find_stack", _stack_page, ctx)
        ctx.readback("find_stack", addr, 0)
        ctx.write_code("write", addr)
        return ctx.call("call", addr)


@register
class FlipStack(Probe):
    id = "flip_stack"
    memory = "stack"
    capability = "stack_flip"
    strategy = None
    description = "code on the main thread's stack after mprotect of that page to RWX"

    def run(self, ctx: Context) -> "int | None":
        addr = ctx.run(SETUP, "find_stack", _stack_page, ctx)
        ctx.mprotect(UNDER_TEST, "mprotect_rwx", addr, PAGESIZE, RWX)
        ctx.write_code("write", addr)
        return ctx.call("call", addr)


@register
class PatchFileText(Probe):
    id = "patch_file_text"
    memory = "private_file"
    capability = "file_text_patching"
    strategy = None
    description = ("map a file with code MAP_PRIVATE RX, mprotect RW, patch (in-process hot patching, "
                   "a hook), mprotect RX, call")
    expected = PATCHED

    def run(self, ctx: Context) -> "int | None":
        page = ctx.arch.code(ORIGINAL).ljust(PAGESIZE, b"\0")
        fd = ctx.run(SETUP, "open", temp_fd, page)
        try:
            addr = ctx.mmap(UNDER_TEST, "mmap_file_rx", PAGESIZE, RX, MAP_PRIVATE, fd)
        finally:
            os.close(fd)
        _arch.flush_icache(ctx.arch, addr, len(page))
        value = ctx.call("call_original", addr)
        if value != ORIGINAL:
            raise WrongValue(value, ORIGINAL)
        ctx.mprotect(UNDER_TEST, "mprotect_rw", addr, PAGESIZE, RW)
        ctx.write_code("patch", addr, PATCHED)
        ctx.mprotect(UNDER_TEST, "mprotect_rx_again", addr, PAGESIZE, RX)
        return ctx.call("call", addr)


@register
class ReadImpliesExec(Probe):
    id = "read_implies_exec"
    memory = "anon"
    capability = "read_implies_exec"
    strategy = None
    description = "Linux: personality(READ_IMPLIES_EXEC) in the child, mmap RW, write, call"

    def skip_reason(self, arch: "_arch.Arch | None", impl: ModuleType) -> "str | None":
        if not hasattr(impl, "get_mdwe"):   # only the Linux module has personality(2)
            return "personality(READ_IMPLIES_EXEC) exists only on Linux"
        return Probe.skip_reason(self, arch, impl)

    def run(self, ctx: Context) -> "int | None":
        ctx.run(UNDER_TEST, "personality", ctx.impl.set_read_implies_exec)
        # With the personality set the kernel adds X to the RW request itself: under test.
        addr = ctx.anon(UNDER_TEST, "mmap_rw", RW)
        ctx.write_code("write", addr)
        return ctx.call("call", addr)


FLIP_CYCLES = 500   # about 2 ms on x86_64; 2,000 would cost a run four times that (README says 500)


def measure_flip_cycle(ctx: Context) -> dict:
    """Median cost of one RW->RX->RW mprotect cycle, in ns."""
    import time
    addr = ctx.anon(SETUP, "mmap_rw", RW)
    ctx.write_code("write", addr)
    ctx.step("flip_cycles")
    samples = []
    clock = time.perf_counter_ns
    for _ in range(FLIP_CYCLES):
        t0 = clock()
        _libc.mprotect(addr, PAGESIZE, RX)
        _libc.mprotect(addr, PAGESIZE, RW)
        samples.append(clock() - t0)
    samples.sort()
    return {"median_ns": samples[len(samples) // 2], "cycles": FLIP_CYCLES}
