"""The parent side: start each probe in its own process, read its steps, classify.

A crash, a kill or a hang of one probe is a result, never a failure of the run.
"""

import os
import sys
from collections.abc import Callable

from probe.engine import arch as _arch
from probe.engine import children as _children
from probe.engine import tmpfiles as _tmpfiles
from probe.engine.classify import classify, skipped
from probe.engine import probes as _probes
from probe.errors import HostError, UsageError
from probe.platform import impl

ISOLATIONS = ("fork", "spawn")
DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = _children.MAX_TIMEOUT
FLIP_TASK = "measure:flip_cycle"


def detect_arch(arm_mode: str = "arm") -> "str | None":
    import struct
    bits = struct.calcsize("P") * 8
    machine = os.uname().machine   # what platform.machine() reads, without importing it
    abi = _arch.elf_abi_version() if machine.lower().startswith(("ppc64", "powerpc64")) else None
    return _arch.detect_name(machine, bits, sys.byteorder, abi, arm_mode)


def watch(child: _children.Child, timeout: float) -> dict:
    """Read one started child's messages until EOF or the deadline, reap it: the raw facts."""
    return _follow(lambda: child, timeout)


def _follow(start, timeout):
    watches = []
    try:
        with _children.signals_blocked():   # until the watch exists, nothing may end the run
            watches.append(_children.Watch(start(), timeout))
        clock = _children.Clock()
        while watches[0].status is None:
            _children.wait_any(watches, clock)
        return watches[0].result()
    finally:
        for w in watches:
            w.abandon()


def _start(task, arch_name, isolation, tmpdir=None):
    start = _children.start_fork if isolation == "fork" else _children.start_spawn
    try:
        return start(task, arch_name, tmpdir)
    except OSError as exc:
        # The harness itself ran out of something (EMFILE from pipe(), EAGAIN from fork):
        # the run cannot go on, and the caller kills the children it already started.
        raise HostError("cannot start a process for %s: %s" % (task, exc.strerror or exc)) from None


def run_task(task: str, arch_name: "str | None", isolation: str = "fork", timeout: float = DEFAULT_TIMEOUT) -> dict:
    """Run one probe or measurement in its own process; the raw facts, unclassified."""
    return _follow(lambda: _start(task, arch_name, isolation), timeout)


def run_tasks(tasks: list, arch_name: "str | None", isolation: str = "fork", timeout: float = DEFAULT_TIMEOUT,
              jobs: int = 1, done: "Callable[[str, dict], None] | None" = None,
              started: "Callable[[str], None] | None" = None, tick: "Callable[[], None] | None" = None,
              meanwhile: "Callable[[], None] | None" = None) -> dict:
    """Run tasks, each in its own process, at most `jobs` at a time: {task: raw facts}.
    Probes share nothing, so running two at once changes no verdict, only the wall time.
    done(task, raw) is called as each ends, started(task) as each starts, tick() at least
    once a second while some run, and meanwhile() once, after the first tasks have started
    (the parent's own work, done while it would otherwise only wait for them).

    The children make their temporary files in a directory of this run, removed at the
    end; whatever ends the run (a signal, a failure to start a child), no child survives it.
    """
    pending, running, results = list(tasks), [], {}
    tmpdir = _run_tmpdir()
    clock = _children.Clock()
    try:
        while pending or running:
            while pending and len(running) < jobs:
                _start_watched(running, pending.pop(0), arch_name, isolation, timeout, tmpdir, started)
            meanwhile = _call_once(meanwhile)
            _children.wait_any([w for _, w in running], clock, tick)
            _collect_ended(running, results, done)
    finally:
        _end_run(running, tmpdir)
    _call_once(meanwhile)     # there was nothing to run
    return results


def _call_once(work):
    """Call work(), if given; None, for the caller to keep so that it calls it only once."""
    if work:
        work()
    return None


def _collect_ended(running, results, done):
    """Move the watches that have an exit status from `running` to `results`."""
    for task, w in [r for r in running if r[1].status is not None]:
        running.remove((task, w))
        results[task] = w.result()
        if done:
            done(task, results[task])


def _start_watched(running, task, arch_name, isolation, timeout, tmpdir, started=None):
    """Start a task and record it in `running` before any stop signal can end the run."""
    with _children.signals_blocked():   # see _follow
        running.append((task, _children.Watch(_start(task, arch_name, isolation, tmpdir), timeout)))
    if started:
        started(task)


def _end_run(running, tmpdir):
    """No child outlives the run, nor do its temporary files."""
    for _, w in running:
        w.abandon()
    if tmpdir:
        _tmpfiles.remove_tree(tmpdir)


def _run_tmpdir():
    """A directory in $TMPDIR (so on the same mount: the same verdicts) for the children's
    files; None where it cannot be made, and the probes then report $TMPDIR's own refusal."""
    try:
        return _tmpfiles.make_temp_dir("memprobe-run-")
    except OSError:
        return None


def select_probes(only: "list | None" = None) -> list:
    registry = _probes.by_id()
    if not only:
        return list(_probes.REGISTRY)
    unknown = [p for p in only if p not in registry]
    if unknown:
        raise UsageError("unknown probe id(s): %s (see `memprobe list`)" % ", ".join(unknown))
    return [p for p in _probes.REGISTRY if p.id in only]


def default_jobs() -> int:
    """Twice the CPUs, at most 4: while the parent forks or reads one child, another keeps
    the CPU busy (on 2 CPUs, a run with 4 at a time took 64 ms where 2 at a time took 68)."""
    return min(2 * (os.cpu_count() or 1), 4)


def run_all(only: "list | None" = None, isolation: str = "fork", timeout: float = DEFAULT_TIMEOUT,
            arm_mode: str = "arm", progress: "Callable[[str, dict], None] | None" = None,
            jobs: "int | None" = None, meanwhile: "Callable[[], None] | None" = None) -> tuple:
    """Run the selected probes, each isolated. -> (arch_name, {id: verdict}, measurements)

    progress(probe_id, verdict) is called as each probe ends (a skipped one too); if it
    also has started(probe_id) and tick() methods, they are called as a probe starts and
    at least once a second while probes run. meanwhile(), the caller's own work, is
    called once: while the flip cost is measured where another CPU is free for it, else
    after the probes."""
    jobs = _check_options(isolation, timeout, default_jobs() if jobs is None else jobs)
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
            if progress:
                progress(probe.id, results[probe.id])
        else:
            to_run.append(probe.id)
    registry = _probes.by_id()

    def done(task, raw):
        _check_spawn_started(isolation, raw)
        results[task] = classify(registry[task], raw, timeout)
        if progress:
            progress(task, results[task])

    run_tasks(to_run, arch_name, isolation, timeout, jobs, done,
              getattr(progress, "started", None), getattr(progress, "tick", None))
    ordered = {p.id: results[p.id] for p in selected}      # registry order, whatever finished first
    # Measured alone, after the probes: a concurrent probe would disturb the timing.
    measurements = {"flip_cycle_ns": measure_flip(arch_name, ordered, isolation, timeout, meanwhile)}
    return arch_name, ordered, measurements


def _check_options(isolation, timeout, jobs):
    """The number of jobs, once the run's options are known to be usable. Raises UsageError."""
    if isolation not in ISOLATIONS:
        raise UsageError("--isolation must be one of %s" % ", ".join(ISOLATIONS))
    if not 0 < timeout <= MAX_TIMEOUT:
        raise UsageError("--timeout must be a positive number of seconds, at most %g" % MAX_TIMEOUT)
    if jobs < 1:
        raise UsageError("--jobs must be at least 1")
    return jobs


def _preload():
    """Import and load in the parent what every forked child needs, so each child
    starts with it instead of paying for it again (the fork overhead target is ~1 ms)."""
    import faulthandler  # noqa: F401
    import resource  # noqa: F401
    import gc
    from probe.platform import libc as _libc  # noqa: F401
    from probe.engine import worker as _worker  # noqa: F401
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


def _spare_cpu() -> bool:
    """Another CPU for the parent while one child is timed (the parent's work on the
    child's CPU would be counted in the child's cycles)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) > 1
    return (os.cpu_count() or 1) > 1


def measure_flip(arch_name: "str | None", results: dict, isolation: str, timeout: float,
                 meanwhile: "Callable[[], None] | None" = None) -> dict:
    """The flip cost, measured in a child of its own; meanwhile() (if given) is called
    once, while the child runs if another CPU is free, else before it starts."""
    flip = results.get("flip_rw_rx")
    if flip is None or flip["outcome"] != "allowed":
        _call_once(meanwhile)
        why = "flip_rw_rx was not run" if flip is None else "flip_rw_rx is %s" % flip["outcome"]
        return {"outcome": "skipped", "median_ns": None, "cycles": None, "detail": why}
    if not _spare_cpu():
        meanwhile = _call_once(meanwhile)   # first: on the one CPU it would be timed as the child's
    raw = run_tasks([FLIP_TASK], arch_name, isolation, timeout, meanwhile=meanwhile)[FLIP_TASK]
    return _flip_figures(raw, timeout)


def _flip_figures(raw, timeout):
    """The measurement section from the measuring child's raw facts."""
    final = raw["messages"][-1] if raw["messages"] else {}
    got = final.get("result", {}).get("measurement")
    if not got:
        verdict = classify(_probes.Probe(), raw, timeout)
        return {"outcome": "error", "median_ns": None, "cycles": None, "detail": verdict["detail"]}
    return {"outcome": "measured", "median_ns": got["median_ns"], "cycles": got["cycles"],
            "detail": "median of %d RW->RX->RW mprotect cycles on one page" % got["cycles"]}


# Kept under their old names for callers that start a child themselves.
_Child = _children.Child
worker_command = _children.worker_command
