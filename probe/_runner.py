"""The parent side: start each probe in its own process, read its steps, classify.

A crash, a kill or a hang of one probe is a result, never a failure of the run.
"""

import errno
import json
import os
import select
import shlex
import signal
import subprocess
import sys
import time

from probe import _arch, _probes
from probe._errors import HostError, UsageError
from probe._platform import impl

ISOLATIONS = ("fork", "spawn")
DEFAULT_TIMEOUT = 10.0
STDERR_KEEP = 2000
FLIP_TASK = "measure:flip_cycle"


def detect_arch(arm_mode="arm"):
    import platform
    import struct
    bits = struct.calcsize("P") * 8
    machine = platform.machine()
    abi = _arch.elf_abi_version() if machine.lower().startswith(("ppc64", "powerpc64")) else None
    return _arch.detect_name(machine, bits, sys.byteorder, abi, arm_mode)


def worker_command():
    """How to start a fresh interpreter running memprobe's worker.

    Under qemu-user the guest cannot exec sys.executable itself; a rig says how to
    start a guest interpreter in MEMPROBE_INTERPRETER (e.g. `qemu-aarch64 -L ROOT
    ROOT/usr/bin/python3.11`); without it the platform module recovers the emulator's
    command line where it can.
    """
    override = os.environ.get("MEMPROBE_INTERPRETER")
    if override:
        return shlex.split(override)
    if not sys.executable:
        raise HostError("--isolation spawn needs sys.executable, which is empty here; use --isolation fork")
    return impl.interpreter_command()   # under qemu-user: the emulator's command line


class _Child:
    """A started task: its pid, the read end of its result pipe, maybe a stderr pipe."""

    def __init__(self, pid, rfd, errfd=None, popen=None):
        self.pid, self.rfd, self.errfd, self.popen = pid, rfd, errfd, popen


def _start_fork(task, arch_name):
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
        os.close(rfd)
        from probe import _worker
        _worker.child_main(task, wfd, arch_name)
    os.close(wfd)
    return _Child(pid, rfd)


def _start_spawn(task, arch_name):
    rfd, wfd = os.pipe()
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    cmd = worker_command() + ["-m", "probe", "_worker", task, "--fd", str(wfd),
                              "--arch", arch_name or ""]
    try:
        popen = subprocess.Popen(cmd, pass_fds=(wfd,), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    except OSError as exc:
        os.close(rfd)
        raise HostError("--isolation spawn cannot start %s: %s; use --isolation fork"
                        % (cmd[0], exc.strerror or exc))
    finally:
        os.close(wfd)
    return _Child(popen.pid, rfd, popen.stderr.fileno(), popen)


class _Watch:
    """One running child: its pipes, its exit, its deadline. Many can be watched at once."""

    def __init__(self, child, timeout):
        self.child = child
        self.started = time.perf_counter()
        self.deadline = time.monotonic() + timeout
        self.open = [child.rfd] + ([child.errfd] if child.errfd is not None else [])
        self.pidfd = _pidfd(child.pid)
        self.chunks, self.err = [], b""
        self.status = None
        self.timed_out = False

    def fds(self):
        return self.open + ([self.pidfd] if self.pidfd is not None else [])

    def on_ready(self, fd):
        if fd == self.pidfd:
            if not self.open:            # exited, and every pipe is drained
                self.status = os.waitpid(self.child.pid, 0)[1]
            return
        data = os.read(fd, 65536)
        if not data:
            self.open.remove(fd)
        elif fd == self.child.rfd:
            self.chunks.append(data)
        else:
            self.err = (self.err + data)[-STDERR_KEEP:]

    def poll(self):
        """Timeouts, and reaping where there is no pidfd to wait on."""
        if self.status is not None:
            return
        if time.monotonic() >= self.deadline:
            self.timed_out = True
            _kill(self.child.pid)
            self.status = os.waitpid(self.child.pid, 0)[1]
        elif not self.open and self.pidfd is None:
            done, status = os.waitpid(self.child.pid, os.WNOHANG)
            if done:
                self.status = status

    def result(self):
        for fd in (self.pidfd, self.child.rfd):
            if fd is not None:
                os.close(fd)
        if self.child.popen is not None:
            self.child.popen.stderr.close()
            self.child.popen.returncode = 0  # reaped by us; keep Popen.__del__ quiet
        messages = []
        for line in b"".join(self.chunks).splitlines():
            try:
                messages.append(json.loads(line))
            except ValueError:
                pass  # a line cut by a crash: the steps before it still count
        return {"messages": messages, "status": self.status, "timed_out": self.timed_out,
                "stderr": self.err.decode("utf-8", "replace").strip(),
                "duration_ms": round((time.perf_counter() - self.started) * 1000, 3)}


def watch(child, timeout):
    """Read one started child's messages until EOF or the deadline, reap it: the raw facts."""
    w = _Watch(child, timeout)
    while w.status is None:
        _wait_any([w])
    return w.result()


def _pidfd(pid):
    """A pollable handle that becomes readable when pid exits (Linux >= 5.3), or None."""
    if not hasattr(os, "pidfd_open"):
        return None
    try:
        return os.pidfd_open(pid)
    except OSError:   # old kernel, or an emulator without the syscall
        return None


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _start(task, arch_name, isolation):
    return (_start_fork if isolation == "fork" else _start_spawn)(task, arch_name)


def run_task(task, arch_name, isolation="fork", timeout=DEFAULT_TIMEOUT):
    """Run one probe or measurement in its own process; the raw facts, unclassified."""
    return watch(_start(task, arch_name, isolation), timeout)


def run_tasks(tasks, arch_name, isolation="fork", timeout=DEFAULT_TIMEOUT, jobs=1, done=None):
    """Run tasks, each in its own process, at most `jobs` at a time: {task: raw facts}.
    Probes share nothing, so running two at once changes no verdict, only the wall time."""
    pending, running, results = list(tasks), [], {}
    while pending or running:
        while pending and len(running) < jobs:
            task = pending.pop(0)
            running.append((task, _Watch(_start(task, arch_name, isolation), timeout)))
        _wait_any([w for _, w in running])
        for task, watch in [r for r in running if r[1].status is not None]:
            running.remove((task, watch))
            results[task] = watch.result()
            if done:
                done(task, results[task])
    return results


def _wait_any(watches):
    """Drive the watches until at least one has an exit status."""
    while True:
        for w in watches:
            w.poll()
        if any(w.status is not None for w in watches):
            return
        owner = {fd: w for w in watches for fd in w.fds()}
        wait = min(w.deadline for w in watches) - time.monotonic()
        if any(not w.open and w.pidfd is None for w in watches):
            wait = min(wait, 0.001)       # polling waitpid: no handle to sleep on
        ready, _, _ = select.select(list(owner), [], [], max(wait, 0))
        for fd in ready:
            owner[fd].on_ready(fd)


def signal_name(num):
    try:
        return signal.Signals(num).name
    except ValueError:
        return "SIG%d" % num


def classify(probe, raw, timeout):
    """Turn a child's exit status, messages and last step into a verdict dict."""
    steps, final, dropped = [], None, None
    for msg in raw["messages"]:
        if "step" in msg:
            steps.append({"name": msg["step"]})
        elif "perms" in msg and steps:
            steps[-1]["perms"] = msg["perms"]
            if msg.get("x_missing") and dropped is None:
                dropped = steps[-1]
        elif "perms_unavailable" in msg and steps:
            steps[-1]["perms_unavailable"] = msg["perms_unavailable"]
        elif "live_code" not in msg:   # how repatch_rx / patch_rwx made live code: see `out`
            final = msg
    last = steps[-1]["name"] if steps else None
    out = {"outcome": None, "step": last, "errno": None, "errno_name": None, "signal": None,
           "signal_number": None, "value": None, "expected": probe.expected,
           "exec_dropped": False, "duration_ms": raw["duration_ms"], "detail": None, "steps": steps,
           **{"live_code": m["live_code"] for m in raw["messages"] if "live_code" in m}}
    status = raw["status"]
    at = " at step %s" % last if last else ""
    if raw["timed_out"]:
        out["outcome"] = "timeout"
        out["detail"] = "no result within %gs%s; the probe was killed" % (timeout, at)
        return out
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal_name(sig)
        out.update(signal=name, signal_number=sig)
        if dropped is not None:
            # The kernel said yes, the maps showed no X, and running the code faulted:
            # PROT_EXEC was silently dropped at that step (HardenedBSD PAGEEXEC).
            out.update(outcome="denied", exec_dropped=True, step=dropped["name"])
            out["detail"] = ("%s succeeded but the mapping is %s: PROT_EXEC was silently dropped; "
                             "calling the code then died of %s" % (dropped["name"], dropped["perms"], name))
            return out
        out["outcome"] = "killed" if sig == signal.SIGKILL else "crashed"
        out["detail"] = "terminated by %s (%s)%s" % (name, signal.strsignal(sig) if hasattr(
            signal, "strsignal") else name, at)
        return out
    if final is None:
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
        out["outcome"] = "error"
        out["detail"] = "worker exited with status %s without a result%s%s" % (
            code, at, (": " + raw["stderr"].splitlines()[-1]) if raw["stderr"] else "")
        return out
    if "result" in final:
        value = final["result"].get("value")
        out["value"] = value
        notes = "; ".join(final["result"].get("notes") or [])
        if probe.expected is None or value == probe.expected:
            out["outcome"] = "allowed"
            if probe.expected is None:
                perms = next((s["perms"] for s in reversed(steps) if "perms" in s), None)
                out["detail"] = "succeeded" + (" (mapping is %s)" % perms if perms else "")
            else:
                out["detail"] = "the code ran and returned %r" % value
        else:
            out["outcome"] = "wrong_result"
            out["detail"] = "the code ran but returned %r, expected %r%s" % (value, probe.expected, at)
        if notes:
            out["detail"] += "; " + notes
        if dropped is not None:
            out["detail"] += ("; the maps showed %s after %s, yet the code ran: this maps source "
                              "does not show X here" % (dropped["perms"], dropped["name"]))
    elif "denied" in final:
        num = final["denied"]["errno"]
        name = errno.errorcode.get(num, "E%d" % num)
        out.update(outcome="denied", errno=num, errno_name=name)
        out["detail"] = "%s refused: %s (%s)" % (last or "a call", name, os.strerror(num))
    elif "dropped" in final:
        out.update(outcome="denied", exec_dropped=True, detail=final["dropped"]["detail"])
    elif "skipped" in final:
        out.update(outcome="skipped", detail=final["skipped"])
    else:
        out.update(outcome="error", detail=str(final.get("error", final)))
    return out


def skipped(probe, reason):
    return {"outcome": "skipped", "step": None, "errno": None, "errno_name": None, "signal": None,
            "signal_number": None, "value": None, "expected": probe.expected,
            "exec_dropped": False, "duration_ms": 0.0, "detail": reason, "steps": []}


def select_probes(only=None):
    registry = _probes.by_id()
    if not only:
        return list(_probes.REGISTRY)
    unknown = [p for p in only if p not in registry]
    if unknown:
        raise UsageError("unknown probe id(s): %s (see `memprobe list`)" % ", ".join(unknown))
    return [p for p in _probes.REGISTRY if p.id in only]


def default_jobs():
    return max(1, min(os.cpu_count() or 1, 4))


def run_all(only=None, isolation="fork", timeout=DEFAULT_TIMEOUT, arm_mode="arm", progress=None,
            jobs=None):
    """Run the selected probes, each isolated. -> (arch_name, {id: verdict}, measurements)"""
    if isolation not in ISOLATIONS:
        raise UsageError("--isolation must be one of %s" % ", ".join(ISOLATIONS))
    if not timeout > 0:
        raise UsageError("--timeout must be a positive number of seconds")
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise UsageError("--jobs must be at least 1")
    arch_name = detect_arch(arm_mode)
    arch = _arch.TABLE.get(arch_name) if arch_name else None
    if isolation == "fork":
        _preload()
    selected = select_probes(only)
    results, to_run = {}, []
    for probe in selected:
        reason = probe.skip_reason(arch, impl)
        if reason:
            results[probe.id] = skipped(probe, reason)
        else:
            to_run.append(probe.id)
    registry = _probes.by_id()

    def done(task, raw):
        _check_spawn_started(isolation, raw)
        results[task] = classify(registry[task], raw, timeout)
        if progress:
            progress(task, results[task])

    run_tasks(to_run, arch_name, isolation, timeout, jobs, done)
    ordered = {p.id: results[p.id] for p in selected}      # registry order, whatever finished first
    # Measured alone, after the probes: a concurrent probe would disturb the timing.
    measurements = {"flip_cycle_ns": measure_flip(arch_name, ordered, isolation, timeout)}
    return arch_name, ordered, measurements


def _preload():
    """Import and load in the parent what every forked child needs, so each child
    starts with it instead of paying for it again (the fork overhead target is ~1 ms)."""
    import faulthandler  # noqa: F401
    import resource  # noqa: F401
    import tempfile  # noqa: F401
    import gc
    from probe import _libc, _worker  # noqa: F401
    _libc.libc()
    if hasattr(impl, "preload"):
        impl.preload()
    # Objects that exist now are never collected by a child: without this, a child's
    # first GC pass writes to (and so copies) every page of the parent's heap.
    gc.freeze()


def _check_spawn_started(isolation, raw):
    # A worker that never said a word and exited 126/127 (or ENOEXEC) never started:
    # that is the host refusing spawn isolation, not a probe result.
    if isolation != "spawn" or raw["messages"] or raw["timed_out"]:
        return
    status = raw["status"]
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) != 0:
        raise HostError("--isolation spawn cannot start a worker interpreter here (exit status %d%s); "
                        "under an emulator set MEMPROBE_INTERPRETER or use --isolation fork"
                        % (os.WEXITSTATUS(status), (": " + raw["stderr"].splitlines()[-1])
                           if raw["stderr"] else ""))


def measure_flip(arch_name, results, isolation, timeout):
    flip = results.get("flip_rw_rx")
    if flip is None or flip["outcome"] != "allowed":
        why = "flip_rw_rx was not run" if flip is None else "flip_rw_rx is %s" % flip["outcome"]
        return {"outcome": "skipped", "median_ns": None, "cycles": None, "detail": why}
    raw = run_task(FLIP_TASK, arch_name, isolation, timeout)
    final = raw["messages"][-1] if raw["messages"] else {}
    got = final.get("result", {}).get("measurement")
    if not got:
        verdict = classify(_probes.Probe(), raw, timeout)
        return {"outcome": "error", "median_ns": None, "cycles": None, "detail": verdict["detail"]}
    return {"outcome": "measured", "median_ns": got["median_ns"], "cycles": got["cycles"],
            "detail": "median of %d RW->RX->RW mprotect cycles on one page" % got["cycles"]}
