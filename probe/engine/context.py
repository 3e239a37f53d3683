"""What a probe uses inside the child: its steps, each either setup or under test.

A probe exists to try one strategy: the mmap, mprotect, memfd_create... that the strategy
needs (the steps *under test*). Everything else is memprobe's own work (*setup*): making
a scratch RW page, creating the temporary file, locating the stack, reading the mapping's
permissions back. Only a step under test can end in `denied`; a failed setup step is the
harness failing, so the probe ends in `error` with a detail, whatever the errno.
"""

import os
from collections.abc import Callable

from probe.engine import arch as _arch
from probe.platform import libc as _libc
from probe.platform.libc import MAP_ANONYMOUS, MAP_PRIVATE, PAGESIZE

ORIGINAL = 23   # what generated code returns
PATCHED = 42    # what patched code returns

SETUP, UNDER_TEST = "setup", "under_test"


class Refused(Exception):
    """The operation under test was refused: the one way to a `denied` verdict."""

    def __init__(self, step, err):
        Exception.__init__(self, "%s refused: %s" % (step, os.strerror(err)))
        self.step = step
        self.errno = err


class SetupFailed(Exception):
    """A setup step failed: memprobe could not prepare the probe, the strategy was not tried."""

    def __init__(self, step, exc):
        Exception.__init__(self, "setup step %s failed, before the operation under test: %s"
                           % (step, describe(exc)))
        self.step = step
        self.reason = describe(exc)


def describe(exc: BaseException) -> str:
    """`EMFILE (Too many open files)`-style text for an exception."""
    err = getattr(exc, "errno", None)
    if err:
        import errno
        return "%s (%s)%s" % (errno.errorcode.get(err, "E%d" % err), os.strerror(err),
                              (": %s" % exc.filename) if getattr(exc, "filename", None) else "")
    return "%s: %s" % (type(exc).__name__, exc)


class ExecDropped(Exception):
    """mmap/mprotect asked for PROT_EXEC, returned success, and the mapping has no X --
    for a probe that calls nothing, so the maps are the only evidence."""

    def __init__(self, step, perms):
        Exception.__init__(self, "%s succeeded but the mapping is %s: PROT_EXEC was silently dropped"
                           % (step, perms))
        self.step = step
        self.perms = perms


class WrongValue(Exception):
    """The code ran but returned something else: never counted as success."""

    def __init__(self, value, expected):
        Exception.__init__(self, "returned %r, expected %r" % (value, expected))
        self.value = value


class Context:
    """The CPU entry, the step channel, and the two kinds of step."""

    def __init__(self, arch, platform_impl, send, result_fd=None):
        self.arch = arch
        self.impl = platform_impl
        self.send = send          # send(dict): one JSON line on the result pipe
        self.result_fd = result_fd
        self.notes = []
        self.dropped = None       # (step, perms): first step whose X the maps do not show
        self.readback_missing = None   # why the mapping permissions could not be read back

    def step(self, name: str) -> None:
        self.send({"step": name})

    def run(self, role: str, name: str, fn: Callable, *args: object, new_fd: bool = False) -> object:
        """Announce step `name` and run fn(*args) as setup or as the operation under test.

        new_fd: the operation creates a descriptor; one is reserved during setup and
        freed just before, so a descriptor limit reached by memprobe fails the setup,
        not the operation under test."""
        self.step(name)
        return self.within(role, name, fn, *args, new_fd=new_fd)

    def within(self, role: str, name: str, fn: Callable, *args: object, new_fd: bool = False) -> object:
        """fn(*args) as more of step `name`, already announced."""
        if role == SETUP:
            try:
                return fn(*args)
            except (OSError, MemoryError) as exc:
                raise SetupFailed(name, exc) from None
        spare = self._reserve_fd(name) if new_fd else None
        if spare is not None:
            os.close(spare)
        try:
            return fn(*args)
        except OSError as exc:
            if not exc.errno:
                raise
            raise Refused(name, exc.errno) from None

    def _reserve_fd(self, name):
        if self.result_fd is None:
            return None
        try:
            return os.dup(self.result_fd)
        except OSError as exc:
            raise SetupFailed(name, exc) from None

    def readback(self, name: str, addr: int, prot: int) -> "str | None":
        """Read the mapping's permissions back after a step (setup: never a refusal).

        Where the source is unreadable (no /proc, no descriptor left) the step records why
        and the verdict rests on the calls alone."""
        try:
            perms = self.impl.mapping_perms(addr)
        except OSError as exc:
            reason = "mapping permissions could not be read back: %s" % describe(exc)
            self.send({"perms_unavailable": reason})
            if self.readback_missing is None:
                self.readback_missing = reason
                self.notes.append(reason)
            return None
        if perms is not None:
            missing = bool(prot & _libc.PROT_EXEC) and "x" not in perms
            self.send({"perms": perms, "x_missing": True} if missing else {"perms": perms})
            # Not fatal: a maps source can be wrong (qemu 7.2 shows an RWX heap page as rw-p).
            # Calling the code decides; HardenedBSD PAGEEXEC really strips X and the call faults.
            if missing and self.dropped is None:
                self.dropped = (name, perms)
        return perms

    _perms = readback   # the older name, used by tests that build steps by hand

    def mmap(self, role: str, name: str, size: int, prot: int, flags: int, fd: int = -1) -> int:
        addr = self.run(role, name, _libc.mmap_, size, prot, flags, fd)
        self.readback(name, addr, prot)
        return addr

    def anon(self, role: str, name: str, prot: int, size: int = PAGESIZE) -> int:
        return self.mmap(role, name, size, prot, MAP_PRIVATE | MAP_ANONYMOUS)

    def mprotect(self, role: str, name: str, addr: int, size: int, prot: int) -> None:
        self.run(role, name, _libc.mprotect, addr, size, prot)
        self.readback(name, addr, prot)

    def write_code(self, name: str, addr: int, value: int = ORIGINAL, flush_at: "int | None" = None) -> None:
        """Write the function; flush the icache for the address it will run from."""
        self.step(name)
        code = self.arch.code(value)
        _libc.write(addr, code)
        method = _arch.flush_icache(self.arch, flush_at or addr, len(code))
        if method.startswith("unavailable"):
            self.notes.append("icache %s" % method)

    def call(self, name: str, addr: int) -> int:
        self.step(name)
        return _arch.Callable(self.arch, addr)()
