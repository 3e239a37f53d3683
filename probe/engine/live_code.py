"""Live code for the repatching probes: a page of RX code that already ran once.

repatch_rx and patch_rwx test what a program does to code that is already running
(RX->RW->RX, RX->RWX). Making that code is setup, not the step under test. The usual
way is the W^X flip (mmap RW, write, mprotect RX). Where a policy refuses the flip
(MDWE, a seccomp filter, PaX MPROTECT), a private RX mapping of a file holding the code
gives live code without any flip, the way a program's own text is mapped: a memfd, or
else an unlinked temporary file in $TMPDIR. The way used goes into the report
(`live_code`), so a refusal at the later step is read against the right kind of memory.

Where a seccomp filter is attached the flip comes last: the filter may kill the process
(SECCOMP_RET_KILL) instead of refusing, and the probe must reach its own step.
"""

from __future__ import annotations

import os
from types import ModuleType

from probe.engine import arch as _arch
from probe.engine import children as _children
from probe.engine import tmpfiles as _tmpfiles
from probe.platform import libc as _libc
from probe.engine.context import ORIGINAL, SETUP, Context, SetupFailed, WrongValue, describe
from probe.platform.libc import MAP_PRIVATE, PAGESIZE, RW, RX

WAYS = ("flip", "memfd", "file")


class WayFailed(Exception):
    """One way to live code did not work here; the next one is tried."""


def temp_fd(content: bytes) -> int:
    """An unlinked temporary file in $TMPDIR holding content: nothing stays behind."""
    # A forked child of a run: in the run's directory; else where tempfile would put it (a
    # spawned worker's TMPDIR is its run's directory), without importing it in a child.
    directory = _children.child_tmpdir or _tmpfiles.default_tmpdir()
    fd, path = _tmpfiles.make_temp_file(directory, "memprobe-")
    try:
        os.unlink(path)
        os.write(fd, content)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _memfd(impl, page):
    fd = impl.memfd(PAGESIZE)
    try:
        os.pwrite(fd, page, 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


def order(impl: ModuleType) -> tuple[str, ...]:
    """The ways to try, first to last."""
    return ("memfd", "file", "flip") if impl.seccomp_filtered() else WAYS


def _by_flip(ctx: Context) -> int:
    """mmap RW, write, mprotect RX: the address; WayFailed where the flip is refused."""
    addr = ctx.anon(SETUP, "mmap_rw", RW)
    ctx.write_code("write", addr)
    ctx.step("mprotect_rx")
    try:
        _libc.mprotect(addr, PAGESIZE, RX)
    except OSError as exc:
        if not exc.errno:
            raise
        raise WayFailed("flip: mprotect_rx refused: %s" % describe(exc)) from None
    ctx.readback("mprotect_rx", addr, RX)
    return addr


def _by_file(ctx: Context, way: str) -> int:
    """A private RX mapping of a memfd or temporary file holding the code."""
    page = ctx.arch.code(ORIGINAL).ljust(PAGESIZE, b"\0")
    try:
        if way == "memfd":
            fd = ctx.run(SETUP, "open_live_memfd", _memfd, ctx.impl, page)
        else:
            fd = ctx.run(SETUP, "open_live_file", temp_fd, page)
    except NotImplementedError as exc:
        raise WayFailed("%s: %s" % (way, exc)) from None
    try:
        addr = ctx.mmap(SETUP, "mmap_live_rx", PAGESIZE, RX, MAP_PRIVATE, fd)
    finally:
        os.close(fd)
    _arch.flush_icache(ctx.arch, addr, PAGESIZE)
    return addr


def live_code(ctx: Context) -> int:
    """The address of RX code that ran and returned 23; SetupFailed where no way works."""
    failures = []
    for way in order(ctx.impl):
        try:
            addr = _by_flip(ctx) if way == "flip" else _by_file(ctx, way)
            break
        except WayFailed as exc:
            failures.append(str(exc))
        except SetupFailed as exc:
            failures.append("%s: %s failed: %s" % (way, exc.step, exc.reason))
    else:
        raise SetupFailed("live_code", RuntimeError("no way to make live RX code: %s"
                                                    % "; ".join(failures)))
    ctx.send({"live_code": way})
    if failures:
        ctx.notes.append("live code mapped from a %s (%s)" % (way, "; ".join(failures)))
    value = ctx.call("call_original", addr)
    if value != ORIGINAL:
        raise WrongValue(value, ORIGINAL)
    return addr
