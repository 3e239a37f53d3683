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
    ROOT/usr/bin/python3.11`).
    """
    override = os.environ.get("MEMPROBE_INTERPRETER")
    if override:
        return shlex.split(override)
    if not sys.executable:
        raise HostError("--isolation spawn needs sys.executable, which is empty here; use --isolation fork")
    return [sys.executable]


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


def _collect(child, timeout):
    """Read messages until EOF or the deadline; reap the child. -> (messages, status, timed_out, stderr)"""
    deadline = time.monotonic() + timeout
    open_fds = [child.rfd] + ([child.errfd] if child.errfd is not None else [])
    pidfd = _pidfd(child.pid)
    chunks, errbuf = [], b""
    timed_out = False
    status = None
    while status is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        if not open_fds and pidfd is None:
            status = _reap(child.pid, deadline)   # no pidfd: poll until exit or deadline
            timed_out = status is None
            break
        ready, _, _ = select.select(open_fds + ([pidfd] if pidfd is not None else []), [], [],
                                    remaining)
        for fd in ready:
            if fd == pidfd:
                if not open_fds:          # exited, and every pipe is drained
                    status = os.waitpid(child.pid, 0)[1]
                continue
            data = os.read(fd, 65536)
            if not data:
                open_fds.remove(fd)
            elif fd == child.rfd:
                chunks.append(data)
            else:
                errbuf = (errbuf + data)[-STDERR_KEEP:]
    if timed_out:
        _kill(child.pid)
        status = os.waitpid(child.pid, 0)[1]
    if pidfd is not None:
        os.close(pidfd)
    os.close(child.rfd)
    if child.popen is not None:
        child.popen.stderr.close()
        child.popen.returncode = 0  # reaped by us; keep Popen.__del__ quiet
    messages = []
    for line in b"".join(chunks).splitlines():
        try:
            messages.append(json.loads(line))
        except ValueError:
            pass  # a line cut by a crash: the steps before it still count
    return messages, status, timed_out, errbuf.decode("utf-8", "replace").strip()


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


def _reap(pid, deadline):
    """Wait for pid; None if the deadline passes first (deadline None: block)."""
    if deadline is None:
        return os.waitpid(pid, 0)[1]
    pause = 0.0001
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() >= deadline:
            return None
        time.sleep(pause)
        pause = min(pause * 2, 0.01)


def run_task(task, arch_name, isolation="fork", timeout=DEFAULT_TIMEOUT):
    """Run one probe or measurement in its own process; the raw facts, unclassified."""
    start = time.perf_counter()
    child = (_start_fork if isolation == "fork" else _start_spawn)(task, arch_name)
    messages, status, timed_out, stderr = _collect(child, timeout)
    return {"messages": messages, "status": status, "timed_out": timed_out,
            "stderr": stderr, "duration_ms": round((time.perf_counter() - start) * 1000, 3)}


def signal_name(num):
    try:
        return signal.Signals(num).name
    except ValueError:
        return "SIG%d" % num


def classify(probe, raw, timeout):
    """Turn a child's exit status, messages and last step into a verdict dict."""
    steps, final = [], None
    for msg in raw["messages"]:
        if "step" in msg:
            steps.append({"name": msg["step"]})
        elif "perms" in msg and steps:
            steps[-1]["perms"] = msg["perms"]
        else:
            final = msg
    last = steps[-1]["name"] if steps else None
    out = {"outcome": None, "step": last, "errno": None, "errno_name": None, "signal": None,
           "signal_number": None, "value": None, "expected": probe.expected,
           "exec_dropped": False, "duration_ms": raw["duration_ms"], "detail": None, "steps": steps}
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


def run_all(only=None, isolation="fork", timeout=DEFAULT_TIMEOUT, arm_mode="arm", progress=None):
    """Run the selected probes, each isolated. -> (arch_name, {id: verdict}, measurements)"""
    if isolation not in ISOLATIONS:
        raise UsageError("--isolation must be one of %s" % ", ".join(ISOLATIONS))
    if not timeout > 0:
        raise UsageError("--timeout must be a positive number of seconds")
    arch_name = detect_arch(arm_mode)
    arch = _arch.TABLE.get(arch_name) if arch_name else None
    if isolation == "fork":
        _preload()
    results = {}
    for probe in select_probes(only):
        reason = probe.skip_reason(arch, impl)
        if reason:
            results[probe.id] = skipped(probe, reason)
        else:
            raw = run_task(probe.id, arch_name, isolation, timeout)
            _check_spawn_started(isolation, raw)
            results[probe.id] = classify(probe, raw, timeout)
        if progress:
            progress(probe.id, results[probe.id])
    measurements = {"flip_cycle_ns": measure_flip(arch_name, results, isolation, timeout)}
    return arch_name, results, measurements


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
