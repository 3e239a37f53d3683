"""The probes: small objects in an ordered registry.

A probe runs in a child process (see _worker). It announces each risky step on the
result pipe *before* doing it, so a crash still tells the parent how far it got.
Its `run` returns the value the generated code returned (or None for probes that
only map); a refused syscall surfaces as _libc.SyscallError and becomes `denied`.
"""

import os
import tempfile

from probe import _arch, _libc
from probe._libc import MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PAGESIZE, RW, RWX, RX

ORIGINAL = 23   # what generated code returns
PATCHED = 42    # what patched code returns


class ExecDropped(Exception):
    """mmap/mprotect asked for PROT_EXEC, returned success, and the mapping has no X --
    for a probe that calls nothing, so the maps are the only evidence."""

    def __init__(self, step, perms):
        Exception.__init__(self, "%s succeeded but the mapping is %s: PROT_EXEC was silently dropped"
                           % (step, perms))
        self.step = step
        self.perms = perms


class Context:
    """What a probe uses inside the child: the CPU entry and the step channel."""

    def __init__(self, arch, platform_impl, send):
        self.arch = arch
        self.impl = platform_impl
        self.send = send          # send(dict): one JSON line on the result pipe
        self.notes = []
        self.dropped = None       # (step, perms): first step whose X the maps do not show

    def step(self, name):
        self.send({"step": name})

    def _perms(self, name, addr, prot):
        perms = self.impl.mapping_perms(addr)
        if perms is not None:
            missing = bool(prot & _libc.PROT_EXEC) and "x" not in perms
            self.send({"perms": perms, "x_missing": True} if missing else {"perms": perms})
            # Not fatal: a maps source can be wrong (qemu 7.2 shows an RWX heap page as rw-p).
            # Calling the code decides; HardenedBSD PAGEEXEC really strips X and the call faults.
            if missing and self.dropped is None:
                self.dropped = (name, perms)
        return perms

    def mmap(self, name, size, prot, flags, fd=-1):
        self.step(name)
        addr = _libc.mmap_(size, prot, flags, fd)
        self._perms(name, addr, prot)
        return addr

    def anon(self, name, prot, size=PAGESIZE):
        return self.mmap(name, size, prot, MAP_PRIVATE | MAP_ANONYMOUS)

    def mprotect(self, name, addr, size, prot):
        self.step(name)
        _libc.mprotect(addr, size, prot)
        self._perms(name, addr, prot)

    def write_code(self, name, addr, value=ORIGINAL, flush_at=None):
        """Write the function; flush the icache for the address it will run from."""
        self.step(name)
        code = self.arch.code(value)
        _libc.write(addr, code)
        method = _arch.flush_icache(self.arch, flush_at or addr, len(code))
        if method.startswith("unavailable"):
            self.notes.append("icache %s" % method)

    def call(self, name, addr):
        self.step(name)
        return _arch.Callable(self.arch, addr)()


class Probe:
    """One strategy. Subclasses set id/description and implement run(ctx)."""

    id = None
    description = ""
    expected = ORIGINAL        # value the code must return; None: nothing is called
    needs_code = True          # needs a machine-code entry for this CPU

    def skip_reason(self, arch, impl):
        """Why this probe cannot apply here, or None."""
        if self.needs_code and arch is None:
            return "no machine code for this CPU in memprobe's table"
        return None

    def run(self, ctx):
        raise NotImplementedError


REGISTRY = []


def register(cls):
    REGISTRY.append(cls())
    return cls


def by_id():
    return {p.id: p for p in REGISTRY}


@register
class ExecRW(Probe):
    id = "exec_rw"
    description = "write code to anonymous RW memory and call it (crashes where NX works)"

    def run(self, ctx):
        addr = ctx.anon("mmap_rw", RW)
        ctx.write_code("write", addr)
        return ctx.call("call", addr)


@register
class FlipRWRX(Probe):
    id = "flip_rw_rx"
    description = "mmap RW, write, mprotect RX, call (W^X flipping: LuaJIT, V8)"

    def run(self, ctx):
        addr = ctx.anon("mmap_rw", RW)
        ctx.write_code("write", addr)
        ctx.mprotect("mprotect_rx", addr, PAGESIZE, RX)
        return ctx.call("call", addr)


@register
class MapRWX(Probe):
    id = "map_rwx"
    description = "mmap RWX, write, call (HotSpot code cache, PyPy)"

    def run(self, ctx):
        addr = ctx.anon("mmap_rwx", RWX)
        ctx.write_code("write", addr)
        return ctx.call("call", addr)


@register
class FlipRWRWX(Probe):
    id = "flip_rw_rwx"
    description = "mmap RW, mprotect RWX, write, call"

    def run(self, ctx):
        addr = ctx.anon("mmap_rw", RW)
        ctx.mprotect("mprotect_rwx", addr, PAGESIZE, RWX)
        ctx.write_code("write", addr)
        return ctx.call("call", addr)


@register
class MapRX(Probe):
    id = "map_rx"
    description = "mmap anonymous RX only (no write, no call): the mapping itself is the test"
    expected = None
    needs_code = False

    def run(self, ctx):
        ctx.anon("mmap_rx", RX)


@register
class MprotectRXNoop(Probe):
    id = "mprotect_rx_noop"
    description = "mmap anonymous RX, then mprotect it RX again (a no-op only seccomp filters refuse)"
    expected = None
    needs_code = False

    def run(self, ctx):
        addr = ctx.anon("mmap_rx", RX)
        ctx.mprotect("mprotect_rx", addr, PAGESIZE, RX)


def _live_code(ctx):
    """A page of RX code that already ran once and returned 23."""
    addr = ctx.anon("mmap_rw", RW)
    ctx.write_code("write", addr)
    ctx.mprotect("mprotect_rx", addr, PAGESIZE, RX)
    value = ctx.call("call_original", addr)
    if value != ORIGINAL:
        raise WrongValue(value, ORIGINAL)
    return addr


class WrongValue(Exception):
    """The code ran but returned something else: never counted as success."""

    def __init__(self, value, expected):
        Exception.__init__(self, "returned %r, expected %r" % (value, expected))
        self.value = value


@register
class RepatchRX(Probe):
    id = "repatch_rx"
    description = "live RX code -> mprotect RW -> patch to 42 -> mprotect RX -> call"
    expected = PATCHED

    def run(self, ctx):
        addr = _live_code(ctx)
        ctx.mprotect("mprotect_rw", addr, PAGESIZE, RW)
        ctx.write_code("patch", addr, PATCHED)
        ctx.mprotect("mprotect_rx_again", addr, PAGESIZE, RX)
        return ctx.call("call", addr)


@register
class PatchRWX(Probe):
    id = "patch_rwx"
    description = "live RX code -> mprotect RWX -> patch while executable (inline caching) -> call"
    expected = PATCHED

    def run(self, ctx):
        addr = _live_code(ctx)
        ctx.mprotect("mprotect_rwx", addr, PAGESIZE, RWX)
        ctx.write_code("patch", addr, PATCHED)
        return ctx.call("call", addr)


class _DualMap(Probe):
    """One object, two views: write through RW (MAP_SHARED), call through RX."""

    def open(self, ctx):
        raise NotImplementedError

    def run(self, ctx):
        ctx.step("open")
        fd = self.open(ctx)
        try:
            rw = ctx.mmap("mmap_rw_view", PAGESIZE, RW, MAP_SHARED, fd)
            rx = ctx.mmap("mmap_rx_view", PAGESIZE, RX, MAP_SHARED, fd)
        finally:
            os.close(fd)
        ctx.write_code("write", rw, flush_at=rx)
        return ctx.call("call", rx)


@register
class DualMapMemfd(_DualMap):
    id = "dual_map_memfd"
    description = "memfd_create, RW view + RX view (MAP_SHARED): write via RW, call via RX (.NET)"

    def open(self, ctx):
        return ctx.impl.memfd(PAGESIZE)


@register
class DualMapShm(_DualMap):
    id = "dual_map_shm"
    description = "the same through a POSIX shared-memory object (shm_open; SHM_ANON on FreeBSD)"

    def open(self, ctx):
        return ctx.impl.shm_fd(PAGESIZE)


@register
class DualMapFile(_DualMap):
    id = "dual_map_file"
    description = "the same through a temporary file in $TMPDIR (libffi's fallback)"

    def open(self, ctx):
        return _temp_fd(b"\0" * PAGESIZE)


def _temp_fd(content):
    """An unlinked temporary file in $TMPDIR holding content: nothing stays behind."""
    fd, path = tempfile.mkstemp(prefix="memprobe-")
    try:
        os.unlink(path)
        os.write(fd, content)
    except BaseException:
        os.close(fd)
        raise
    return fd


HEAP_BLOCK = 256   # small enough to come from the brk heap, not an mmap'd chunk


@register
class ExecHeap(Probe):
    id = "exec_heap"
    description = "code in malloc'd memory, called as is (crashes where the heap is not executable)"

    def run(self, ctx):
        ctx.step("malloc")
        addr = _libc.malloc(HEAP_BLOCK)
        ctx._perms("malloc", addr, 0)
        ctx.write_code("write", addr)
        return ctx.call("call", addr)


@register
class FlipHeap(Probe):
    id = "flip_heap"
    description = "code in malloc'd memory after mprotect of its page(s) to RWX"

    def run(self, ctx):
        ctx.step("malloc")
        addr = _libc.malloc(HEAP_BLOCK)
        start = _libc.page_floor(addr)
        size = _libc.round_pages(addr + HEAP_BLOCK - start)
        ctx.mprotect("mprotect_rwx", start, size, RWX)
        ctx.write_code("write", addr)
        return ctx.call("call", addr)


STACK_MIN = 64 * 1024


def _stack_page(ctx):
    """A page in the unused low end of the main thread's stack VMA.

    The code must sit on the real stack mapping (that is what execstack policies look
    at), yet below anything the running frames and the ctypes call will touch: the
    second page of a VMA at least 64 KiB long is far below the live stack.
    """
    maps = ctx.impl.maps_snapshot()
    if maps is None:
        raise NotImplementedError("this OS gives no memory map to locate the stack")
    marker = _environ_address()
    for start, end, perms, path in maps:
        if path == "[stack]" or (marker is not None and start <= marker < end and "w" in perms):
            if end - start < STACK_MIN:
                raise NotImplementedError("the stack mapping is only %d bytes" % (end - start))
            return start + PAGESIZE
    raise NotImplementedError("cannot locate the main thread's stack mapping")


def _environ_address():
    # The initial environment block lives on the main stack; used where maps have no
    # [stack] label.
    import ctypes
    try:
        return ctypes.c_void_p.in_dll(_libc.libc(), "environ").value
    except ValueError:
        return None


@register
class ExecStack(Probe):
    id = "exec_stack"
    description = "code on the main thread's stack mapping, called as is"

    def run(self, ctx):
        ctx.step("find_stack")
        addr = _stack_page(ctx)
        ctx._perms("find_stack", addr, 0)
        ctx.write_code("write", addr)
        return ctx.call("call", addr)


@register
class FlipStack(Probe):
    id = "flip_stack"
    description = "code on the main thread's stack after mprotect of that page to RWX"

    def run(self, ctx):
        ctx.step("find_stack")
        addr = _stack_page(ctx)
        ctx.mprotect("mprotect_rwx", addr, PAGESIZE, RWX)
        ctx.write_code("write", addr)
        return ctx.call("call", addr)


@register
class PatchFileText(Probe):
    id = "patch_file_text"
    description = "map a file with code MAP_PRIVATE RX, mprotect RW, patch (a breakpoint), mprotect RX, call"
    expected = PATCHED

    def run(self, ctx):
        ctx.step("open")
        page = ctx.arch.code(ORIGINAL).ljust(PAGESIZE, b"\0")
        fd = _temp_fd(page)
        try:
            addr = ctx.mmap("mmap_file_rx", PAGESIZE, RX, MAP_PRIVATE, fd)
        finally:
            os.close(fd)
        _arch.flush_icache(ctx.arch, addr, len(page))
        value = ctx.call("call_original", addr)
        if value != ORIGINAL:
            raise WrongValue(value, ORIGINAL)
        ctx.mprotect("mprotect_rw", addr, PAGESIZE, RW)
        ctx.write_code("patch", addr, PATCHED)
        ctx.mprotect("mprotect_rx_again", addr, PAGESIZE, RX)
        return ctx.call("call", addr)


@register
class ReadImpliesExec(Probe):
    id = "read_implies_exec"
    description = "Linux: personality(READ_IMPLIES_EXEC) in the child, mmap RW, write, call"

    def skip_reason(self, arch, impl):
        if not hasattr(impl, "get_mdwe"):   # only the Linux module has personality(2)
            return "personality(READ_IMPLIES_EXEC) exists only on Linux"
        return Probe.skip_reason(self, arch, impl)

    def run(self, ctx):
        ctx.step("personality")
        ctx.impl.set_read_implies_exec()
        # With the personality set the kernel adds X to the RW request itself.
        addr = ctx.anon("mmap_rw", RW)
        ctx.write_code("write", addr)
        return ctx.call("call", addr)


FLIP_CYCLES = 500


def measure_flip_cycle(ctx):
    """Median cost of one RW->RX->RW mprotect cycle, in ns."""
    import time
    addr = ctx.anon("mmap_rw", RW)
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
