"""The process mechanics of the parent side: start probe children, watch them, end them.

Every child starts clean: a forked child closes the pipes and pidfds the parent holds for
its siblings, and a spawned one starts an isolated interpreter (`-I`: no current
directory, no PYTHON* variables, no user site-packages) that is told explicitly where
memprobe lives. A deadline is judged only after everything a child already wrote and its
exit status have been collected, and time the parent itself spent stopped (SIGSTOP, a
paused VM) is not counted against the children.
"""

import contextlib
from collections.abc import Callable, Iterator
import errno
import os
import select
import signal
import sys
import time

from probe.engine import protocol, rawsignal
from probe.errors import STOP_SIGNALS, HostError
from probe.platform import impl

STDERR_KEEP = 2000
# Longest --timeout accepted: beyond this select() and the clocks overflow on some hosts.
MAX_TIMEOUT = 86400.0
# A wake-up this much later than asked means the parent itself was not running.
PAUSE_SLACK = 0.25
# STOP_SIGNALS end a run; they are blocked while a child is being made so that no Python
# handler can run in a child that has not yet reset them.

# Runs `memprobe ARGS` in an interpreter started with -I: sys.argv[1] is the list of
# directories (os.pathsep-joined) where memprobe and what it imports live.
BOOTSTRAP = ("import sys; sys.path[:0] = sys.argv.pop(1).split(%r); "
             "from probe.cli import console_main; sys.exit(console_main())" % os.pathsep)

_OUT_OF_RESOURCES = (errno.EAGAIN, errno.ENOMEM, errno.EMFILE, errno.ENFILE)

# Read ends and pidfds the parent holds for running children: a forked child closes them.
_HELD_FDS = set()

# In a forked child: the run's directory, where it makes its temporary files.
child_tmpdir = None


def isolated_args(path_entries: list) -> list:
    """Interpreter arguments that start memprobe's CLI isolated from the current directory
    and the environment's PYTHON* variables; the CLI's own arguments follow."""
    return ["-I", "-c", BOOTSTRAP, os.pathsep.join(path_entries)]


def package_parent() -> str:
    """The directory that holds the `probe` package."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def import_path() -> list:
    """Where memprobe and what it imports live, for an isolated interpreter: this sys.path
    without the current directory (unless memprobe itself lives there)."""
    here = os.path.realpath(os.getcwd())
    home = package_parent()
    return [home] + [p for p in sys.path if p and os.path.isabs(p)
                     and os.path.realpath(p) not in (here, home)]


def worker_command() -> list:
    """How to start a fresh interpreter running memprobe's worker.

    Under qemu-user the guest cannot exec sys.executable itself; a rig says how to
    start a guest interpreter in MEMPROBE_INTERPRETER (e.g. `qemu-aarch64 -L ROOT
    ROOT/usr/bin/python3.11`); without it the platform module recovers the emulator's
    command line where it can.
    """
    override = os.environ.get("MEMPROBE_INTERPRETER")
    if override:
        import shlex
        return shlex.split(override)
    if not sys.executable:
        raise HostError("--isolation spawn needs sys.executable, which is empty here; use --isolation fork")
    return impl.interpreter_command()   # under qemu-user: the emulator's command line


class Child:
    """A started task: its pid, the read end of its result pipe, maybe a stderr pipe."""

    def __init__(self, pid, rfd, errfd=None, popen=None):
        self.pid, self.rfd, self.errfd, self.popen = pid, rfd, errfd, popen


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Hold back the stop signals (delivered on leaving) while a child is being made."""
    if rawsignal.pthread_sigmask is None:
        yield
        return
    old = rawsignal.pthread_sigmask(rawsignal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        rawsignal.pthread_sigmask(rawsignal.SIG_SETMASK, old)


def _pipe():
    rfd, wfd = os.pipe()      # O_CLOEXEC: no exec'd program inherits either end
    _HELD_FDS.add(rfd)
    return rfd, wfd


def _close_held(fd):
    if fd is not None:
        _HELD_FDS.discard(fd)
        os.close(fd)


def _become_child(tmpdir):
    """In a freshly forked child: drop the siblings' descriptors and the parent's handlers."""
    for fd in _HELD_FDS:
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD_FDS.clear()
    for sig in STOP_SIGNALS:
        if callable(rawsignal.getsignal(sig)):
            rawsignal.set_handler(sig, rawsignal.SIG_DFL)
    if rawsignal.pthread_sigmask is not None:
        rawsignal.pthread_sigmask(rawsignal.SIG_UNBLOCK, STOP_SIGNALS)
    global child_tmpdir
    child_tmpdir = tmpdir


def start_fork(task: str, arch_name: "str | None", tmpdir: "str | None" = None) -> "Child":
    """Fork a child running `task`; call it with signals_blocked(), held until the child
    is recorded where whatever ends the run will find it."""
    rfd, wfd = _pipe()
    try:
        pid = os.fork()
        if pid == 0:  # child: never returns
            try:
                _become_child(tmpdir)
                from probe.engine import worker as _worker
                _worker.child_main(task, wfd, arch_name)
            finally:
                os._exit(70)
    except BaseException:
        _close_held(rfd)
        raise
    finally:
        os.close(wfd)
    return Child(pid, rfd)


def start_spawn(task: str, arch_name: "str | None", tmpdir: "str | None" = None) -> "Child":
    """Start a fresh interpreter running `task` (as start_fork, with signals_blocked():
    the worker inherits the mask and unblocks them first thing)."""
    import subprocess   # spawn only: a fork run does without it
    rfd, wfd = _pipe()
    env = dict(os.environ)
    if tmpdir:
        env["TMPDIR"] = tmpdir
    cmd = worker_command() + isolated_args([package_parent()]) + [
        "_worker", task, "--fd", str(wfd), "--arch", arch_name or ""]
    try:
        popen = subprocess.Popen(cmd, pass_fds=(wfd,), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    except OSError as exc:
        _close_held(rfd)
        if exc.errno in _OUT_OF_RESOURCES:
            raise       # this host is short of something, not unable to spawn
        raise HostError("--isolation spawn cannot start %s: %s; use --isolation fork"
                        % (cmd[0], exc.strerror or exc))
    except BaseException:
        _close_held(rfd)
        raise
    finally:
        os.close(wfd)
    _HELD_FDS.add(popen.stderr.fileno())
    return Child(popen.pid, rfd, popen.stderr.fileno(), popen)


def _pidfd(pid):
    """A pollable handle that becomes readable when pid exits (Linux >= 5.3), or None."""
    if not hasattr(os, "pidfd_open"):
        return None
    try:
        fd = os.pidfd_open(pid)   # always close-on-exec
    except OSError:   # old kernel, an emulator without the syscall, or no descriptor left
        return None
    _HELD_FDS.add(fd)
    return fd


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class Watch:
    """One running child: its pipes, its exit, its deadline. Many can be watched at once."""

    def __init__(self, child, timeout):
        self.child = child
        self.started = time.perf_counter()
        self.deadline = time.monotonic() + timeout
        self.open = [child.rfd] + ([child.errfd] if child.errfd is not None else [])
        self.chunks, self.err = [], b""
        self.status = None
        self.timed_out = False
        self.exited = False        # the pidfd said so; reap once the pipes are drained
        try:
            self.pidfd = _pidfd(child.pid)
        except BaseException:
            self.abandon()
            raise

    def fds(self) -> list:
        return self.open + ([self.pidfd] if self.pidfd is not None else [])

    def on_ready(self, fd: int) -> None:
        if fd == self.pidfd:
            self.exited = True
            return
        data = os.read(fd, 65536)
        if not data:
            self.open.remove(fd)
        elif fd == self.child.rfd:
            self.chunks.append(data)
        else:
            self.err = (self.err + data)[-STDERR_KEEP:]

    def drain(self) -> None:
        """Read whatever the child has written so far, without waiting."""
        while self.open:
            ready, _, _ = select.select(self.open, [], [], 0)
            if not ready:
                return
            for fd in ready:
                self.on_ready(fd)

    def poll(self, now: float) -> None:
        """Collect an exit that has happened; past the deadline, kill only a child that is
        still running once everything it wrote and its exit status are in."""
        if self.status is not None:
            return
        expired = now >= self.deadline
        if not (expired or self.exited or (not self.open and self.pidfd is None)):
            return
        if expired:
            self.drain()
        if self.open and not expired:
            return              # exited: its last bytes are still in the pipes
        self._reap(expired)

    def _reap(self, expired: bool) -> None:
        """Collect the exit status if the child has exited; past the deadline, kill it first."""
        done, status = os.waitpid(self.child.pid, os.WNOHANG)
        if done:
            self.drain()        # after the exit nothing more can come: read it to EOF
            self.status = status
        elif expired:
            self.timed_out = True
            kill(self.child.pid)
            self.status = os.waitpid(self.child.pid, 0)[1]
            self.drain()

    def abandon(self) -> None:
        """Kill and reap the child (if still unreaped) and release its descriptors."""
        if self.status is None:
            kill(self.child.pid)
            try:
                self.status = os.waitpid(self.child.pid, 0)[1]
            except ChildProcessError:
                pass
        self.release()

    def release(self) -> None:
        for fd in (getattr(self, "pidfd", None), self.child.rfd):
            _close_held(fd)
        self.pidfd = None
        self.child.rfd = None
        if self.child.popen is not None:
            _HELD_FDS.discard(self.child.errfd)
            self.child.popen.stderr.close()
            self.child.popen.returncode = 0  # reaped by us; keep Popen.__del__ quiet

    def result(self) -> dict:
        duration = round((time.perf_counter() - self.started) * 1000, 3)
        self.release()
        messages, problem = protocol.decode(b"".join(self.chunks))
        return {"messages": messages, "status": self.status, "timed_out": self.timed_out,
                "stderr": self.err.decode("utf-8", "replace").strip(), "duration_ms": duration,
                "protocol_error": problem}


class Clock:
    """Notices when the parent itself was stopped between two waits, and moves the
    children's deadlines by that much: a paused parent never invents a timeout."""

    def __init__(self):
        self.expected_wake = None

    def waiting(self, seconds: float) -> None:
        self.expected_wake = time.monotonic() + seconds

    def woke(self, watches: list) -> None:
        late = time.monotonic() - self.expected_wake
        if late > PAUSE_SLACK:
            for w in watches:
                w.deadline += late


def wait_any(watches: list, clock: "Clock | None" = None, tick: "Callable[[], None] | None" = None,
             tick_every: float = 1.0) -> None:
    """Drive the watches until at least one has an exit status; tick(), if given, is
    called at least every tick_every seconds meanwhile (a progress display's refresh)."""
    clock = clock or Clock()
    while True:
        now = time.monotonic()
        for w in watches:
            w.poll(now)
        if any(w.status is not None for w in watches):
            return
        ready, owner = _wait_for_news(watches, clock, now, tick_every if tick is not None else None)
        if tick is not None:
            tick()
        for fd in ready:
            owner[fd].on_ready(fd)


def _wait_for_news(watches, clock, now, most=None):
    """Sleep until a pipe or an exit handle of a watch is ready, or the first deadline
    (or `most` seconds, where given): (the ready descriptors, their watches)."""
    owner = {fd: w for w in watches for fd in w.fds()}
    wait = min(w.deadline for w in watches) - now
    if any(not w.open and w.pidfd is None for w in watches):
        wait = min(wait, 0.001)       # polling waitpid: no handle to sleep on
    wait = max(wait, 0) if most is None else min(max(wait, 0), most)
    clock.waiting(wait)
    ready, _, _ = select.select(list(owner), [], [], wait)
    clock.woke(watches)
    return ready, owner
