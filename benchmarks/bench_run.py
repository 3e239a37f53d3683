"""Benchmark of `memprobe run`: figures as ratios against baselines measured in the same run.

    python benchmarks/bench_run.py [--repeat N]

1. median wall time of a full `memprobe run --output - --quiet` (the console script's
   code, run from this checkout) / median wall time of
   paxtest's 15 memory-protection binaries run one after another (target <= 2.0); paxtest
   is found in /usr/lib/paxtest (or $MEMPROBE_PAXTEST_DIR), installed with apt-get when
   missing and run as root, and otherwise replaced, with a line saying so, by the
   interpreter baseline `python -I -c "import yaml, psutil, ctypes"`; that one is
   measured too, interleaved with the others;
2. peak RSS of a full run beside a paxtest binary's, as GNU time reports it (%M): a
   process started from this one would count this interpreter's own peak in its
   ru_maxrss (Linux carries it over exec), which dwarfs a small C program's; without GNU
   time, os.wait4's ru_maxrss of the run alone;
3. isolation cost per probe in fork mode (target <= 2 ms): the wall time of running every
   probe, each in its own forked child, divided by the number of probes, one at a time
   and with the default --jobs; and the latency of one isolated probe (an isolated map_rx
   minus the same body run in-process), beside a bare fork()+_exit()+waitpid().

Runs are timed with compiled bytecode, as an installed memprobe has it: the children get
no PYTHONDONTWRITEBYTECODE, and a first untimed run writes the cache. The figures of 3.
come from a child of this script (--isolation-only) that loads what a run loads and no
more: subprocess, statistics and tempfile bring in threading and random, whose at-fork
handlers would run in every forked probe child and inflate its cost.
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# `memprobe run --output - --quiet` as the installed console script runs it (from this
# checkout: PYTHONPATH), without the runpy machinery that `python -m probe` adds.
RUN_ARGS = ["-c", "import sys; from probe.cli import console_main; sys.exit(console_main())",
            "run", "--output", "-", "--quiet"]

# paxtest's memory-protection tests (its address-randomisation ones measure something else).
PAXTEST_BINARIES = ("anonmap", "execbss", "execdata", "execheap", "execstack", "mprotanon",
                    "mprotbss", "mprotdata", "mprotheap", "mprotstack", "mprotshbss",
                    "mprotshdata", "writetext", "shlibbss", "shlibdata")
PAXTEST_DIRS = ("/usr/lib/paxtest", "/usr/lib64/paxtest", "/usr/libexec/paxtest")


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def wall(cmd, env, check=True):
    """Wall time and peak RSS (KiB) of one command."""
    import subprocess
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    proc.returncode = 0
    if check and status != 0:
        raise SystemExit("benchmark command failed: %s" % " ".join(cmd))
    return elapsed, usage.ru_maxrss


def _paxtest_dir():
    override = os.environ.get("MEMPROBE_PAXTEST_DIR")
    for directory in ([override] if override else PAXTEST_DIRS):
        if all(os.access(os.path.join(directory, b), os.X_OK) for b in PAXTEST_BINARIES):
            return directory
    return None


def find_paxtest():
    """(directory of paxtest's binaries or None, a line saying how it was found or why not)."""
    import shutil
    import subprocess
    found = _paxtest_dir()
    if found:
        return found, "paxtest found in %s" % found
    if os.environ.get("MEMPROBE_PAXTEST_DIR"):
        return None, "MEMPROBE_PAXTEST_DIR=%s lacks paxtest's binaries" % os.environ["MEMPROBE_PAXTEST_DIR"]
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, ("paxtest is not installed and cannot be installed here (needs root and "
                      "apt-get: apt-get install paxtest)")
    print("paxtest is missing: apt-get install paxtest ...", flush=True)
    cmd = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "-q", "paxtest"]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    found = _paxtest_dir()
    if found:
        return found, "paxtest installed with apt-get into %s" % found
    why = (proc.stderr.strip().splitlines() or ["exit status %d" % proc.returncode])[-1]
    return None, "paxtest could not be installed with apt-get: %s" % why


def gnu_time():
    """GNU time's path, or None (BusyBox and shell keywords have no -f %M)."""
    import shutil
    import subprocess
    path = shutil.which("time")
    if not path:
        return None
    proc = subprocess.run([path, "--version"], capture_output=True, text=True)
    return path if "GNU" in proc.stdout + proc.stderr else None


def peak_rss(timer, cmd, env):
    """Peak RSS (KiB) of cmd and the children it reaped, measured by GNU time."""
    import subprocess
    import tempfile
    with tempfile.NamedTemporaryFile("r") as out:
        subprocess.run([timer, "-f", "%M", "-o", out.name] + cmd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        return int(out.read().split()[-1])


def rss_figures(env, paxtest):
    """{"run": KiB, "paxtest": KiB} measured by GNU time; {} without it."""
    timer = gnu_time()
    if not timer:
        return {}
    run_cmd = [sys.executable] + RUN_ARGS
    out = {"run": max(peak_rss(timer, run_cmd, env) for _ in range(3))}
    if paxtest:
        pax_env = dict(env, LD_LIBRARY_PATH=paxtest, PAXTEST_MODE="0")
        out["paxtest"] = max(peak_rss(timer, [os.path.join(paxtest, name)], pax_env)
                             for name in PAXTEST_BINARIES)
    return out


def paxtest_sequence(directory, env):
    """Wall time of the 15 binaries run one after another, and the largest peak RSS."""
    env = dict(env, LD_LIBRARY_PATH=directory, PAXTEST_MODE="0")   # as the paxtest script does
    t0 = time.perf_counter()
    rss = 0
    for name in PAXTEST_BINARIES:
        # A binary that reports "Vulnerable" or "Killed" exits as it likes: only the time counts.
        rss = max(rss, wall([os.path.join(directory, name)], env, check=False)[1])
    return time.perf_counter() - t0, rss


# The least any run of this design can cost: the interpreter with the modules a run cannot do
# without (argparse for its command line, ctypes for the system calls, json for the result
# pipe), and one bare fork()+_exit() per child a run makes (17 probes and the flip
# measurement), all forked before any is waited for. No probe, detector or report in it.
FLOOR_CODE = ("import argparse, ctypes, json, os\n"
              "pids = []\n"
              "for _ in range(18):\n"
              "    pid = os.fork()\n"
              "    if pid == 0:\n"
              "        os._exit(0)\n"
              "    pids.append(pid)\n"
              "for pid in pids:\n"
              "    os.waitpid(pid, 0)\n")


def side_by_side(repeat, env, paxtest):
    """Interleaved runs (same machine state for each): {name: ([seconds], max RSS KiB)}."""
    py = sys.executable
    commands = {"run": lambda: wall([py] + RUN_ARGS, env),
                "interp": lambda: wall([py, "-I", "-c", "import yaml, psutil, ctypes"], env),
                "floor": lambda: wall([py, "-c", FLOOR_CODE], env)}
    if paxtest:
        commands["paxtest"] = lambda: paxtest_sequence(paxtest, env)
    for measure in commands.values():   # warm the page cache and the bytecode cache
        measure()
    figures = {name: ([], 0) for name in commands}
    for _ in range(repeat):
        for name, measure in commands.items():
            seconds, rss = measure()
            times, peak = figures[name]
            times.append(seconds)
            figures[name] = (times, max(peak, rss))
    return figures


def isolation_figures(repeat):
    """(per-probe wall ms by jobs, isolated map_rx s, in-process s, bare fork s, probe count)."""
    from probe.engine import arch as _arch
    from probe.engine import probes as _probes
    from probe.engine import runner as _runner
    from probe.platform import impl
    _runner._preload()
    arch = _runner.detect_arch()
    probe = _probes.by_id()["map_rx"]
    ctx = _probes.Context(_arch.TABLE.get(arch), impl, lambda msg: None)
    inproc = []
    for _ in range(200):
        t0 = time.perf_counter()
        probe.run(ctx)
        inproc.append(time.perf_counter() - t0)
    isolated = [_runner.run_task("map_rx", arch)["duration_ms"] / 1000 for _ in range(200)]

    def bare():
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        return time.perf_counter() - t0
    forks = [bare() for _ in range(200)]

    # What a run pays per probe: every probe of the registry, each in its own process,
    # wall time / number of probes (the probes' own work included), one at a time and with
    # the default --jobs.
    ids = [p.id for p in _probes.REGISTRY if p.skip_reason(ctx.arch, impl) is None]
    per_probe = {}
    for jobs in (1, _runner.default_jobs()):
        walls = []
        for _ in range(max(5, repeat)):
            t0 = time.perf_counter()
            _runner.run_tasks(ids, arch, "fork", 10.0, jobs)
            walls.append(time.perf_counter() - t0)
        per_probe[jobs] = median(walls) / len(ids) * 1000
    return (per_probe, median(isolated), median(inproc),
            median(forks), len(ids))


def detection_ms():
    from probe import mechanisms as _mechanisms
    _mechanisms.detect()
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        _mechanisms.detect()
        times.append(time.perf_counter() - t0)
    return median(times) * 1000


def isolation_in_child(repeat, env):
    """isolation_figures() and detection_ms() from a fresh child of this script."""
    import subprocess
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--isolation-only",
                          "--repeat", str(repeat)], env=env, stdout=subprocess.PIPE, check=True).stdout
    per_probe, isolated, inproc, fork, count, detect_ms = json.loads(out)
    return {int(k): v for k, v in per_probe.items()}, isolated, inproc, fork, count, detect_ms


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--isolation-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.isolation_only:
        print(json.dumps(list(isolation_figures(args.repeat)) + [detection_ms()]))
        return
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    paxtest, how = find_paxtest()
    print(how)
    load_before = os.getloadavg()[0]
    figures = side_by_side(args.repeat, env, paxtest)
    load_after = os.getloadavg()[0]
    measured_rss = rss_figures(env, paxtest)
    per_probe, isolated, inproc, fork, probe_count, detect_ms = isolation_in_child(args.repeat, env)

    from probe.engine import probes as _probes
    med = {name: median(times) for name, (times, _) in figures.items()}
    rss = {name: peak for name, (_, peak) in figures.items()}
    print("memprobe run benchmark (%d interleaved runs, Python %s, %d CPUs, load %.2f -> %.2f)"
          % (args.repeat, sys.version.split()[0], os.cpu_count() or 0, load_before, load_after))
    print("  full run  memprobe run (%d probes):                    median %.1f ms"
          % (len(_probes.REGISTRY), med["run"] * 1000))
    if paxtest:
        print("  paxtest   its %d memory binaries one after another:   median %.1f ms"
              % (len(PAXTEST_BINARIES), med["paxtest"] * 1000))
        print("  ratio run/paxtest: %.2f (target <= 2.0)" % (med["run"] / med["paxtest"]))
    else:
        print("  paxtest   not measured: the interpreter baseline stands in for it")
    print("  floor     interpreter + argparse, ctypes, json + 18 bare forks: median %.1f ms"
          % (med["floor"] * 1000))
    if paxtest:
        print("  ratio floor/paxtest: %.2f (no run of this design can do better)"
              % (med["floor"] / med["paxtest"]))
    print("  baseline  python -I -c 'import yaml, psutil, ctypes':  median %.1f ms"
          % (med["interp"] * 1000))
    print("  ratio run/interpreter baseline: %.2f%s" % (med["run"] / med["interp"],
                                                        "" if paxtest else " (target <= 2.0)"))
    print("  fork isolation cost per probe in a run (%d probes, each in its own process):"
          % probe_count)
    for jobs, ms in sorted(per_probe.items()):
        print("    --jobs %d: %.2f ms per probe, probe work included (target <= 2 ms)" % (jobs, ms))
    print("  latency of one isolated probe: %.2f ms (isolated map_rx %.2f ms - in-process %.2f ms;"
          " a bare fork()+_exit()+waitpid() alone: %.2f ms)"
          % ((isolated - inproc) * 1000, isolated * 1000, inproc * 1000, fork * 1000))
    print("  policy detection (all detectors, warm): median %.2f ms" % detect_ms)
    if not measured_rss:
        print("  peak RSS of a full run: %.1f MiB (os.wait4, max over runs; no GNU time here to "
              "measure paxtest's)" % (rss["run"] / 1024))
        return
    print("  peak RSS of a full run: %.1f MiB (GNU time, max of 3 runs)" % (measured_rss["run"] / 1024))
    if paxtest:
        print("  peak RSS of a paxtest binary: %.1f MiB (GNU time, max over the 15); ratio %.1f"
              % (measured_rss["paxtest"] / 1024, measured_rss["run"] / measured_rss["paxtest"]))


if __name__ == "__main__":
    main()
