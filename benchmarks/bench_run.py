"""Benchmark of `memprobe run`: figures as ratios against baselines measured in the same run.

    python benchmarks/bench_run.py [--repeat N]

1. median wall time of a full `memprobe run` / median wall time of
   `python -I -c "import yaml, psutil, ctypes"` (target <= 2.0);
2. isolation cost per probe in fork mode (target <= 2 ms): the wall time of running every
   probe, each in its own forked child, divided by the number of probes, one at a time
   and with the default --jobs; and the latency of one isolated probe (an isolated map_rx
   minus the same body run in-process), beside a bare fork()+_exit()+waitpid();
3. peak RSS of a full run (the child's ru_maxrss).
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def wall(cmd, env):
    """Wall time and peak RSS (KiB) of one command."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    proc.returncode = 0
    if status != 0:
        raise SystemExit("benchmark command failed: %s" % " ".join(cmd))
    return elapsed, usage.ru_maxrss


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=ROOT)
    py = sys.executable

    baseline_cmd = [py, "-I", "-c", "import yaml, psutil, ctypes"]
    run_cmd = [py, "-m", "probe", "run", "--output", "-", "--quiet"]
    wall(baseline_cmd, env), wall(run_cmd, env)       # warm the page cache
    base, runs, rss = [], [], []
    for _ in range(args.repeat):                       # interleaved: same machine state
        base.append(wall(baseline_cmd, env)[0])
        t, r = wall(run_cmd, env)
        runs.append(t)
        rss.append(r)
    b, r = statistics.median(base), statistics.median(runs)

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
    overhead_ms = (statistics.median(isolated) - statistics.median(inproc)) * 1000

    # What a run pays per probe: every probe of the registry, each in its own process,
    # wall time / number of probes (the probes' own work included), one at a time and with
    # the default --jobs.
    ids = [p.id for p in _probes.REGISTRY if p.skip_reason(ctx.arch, impl) is None]
    per_probe = {}
    for jobs in (1, _runner.default_jobs()):
        walls = []
        for _ in range(max(5, args.repeat)):
            t0 = time.perf_counter()
            _runner.run_tasks(ids, arch, "fork", 10.0, jobs)
            walls.append(time.perf_counter() - t0)
        per_probe[jobs] = statistics.median(walls) / len(ids) * 1000

    from probe import mechanisms as _mechanisms
    _mechanisms.detect()
    detect_times = []
    for _ in range(20):
        t0 = time.perf_counter()
        _mechanisms.detect()
        detect_times.append(time.perf_counter() - t0)
    detect_ms = statistics.median(detect_times) * 1000

    print("memprobe run benchmark (%d interleaved runs, %s)" % (args.repeat, sys.version.split()[0]))
    print("  baseline  python -I -c 'import yaml, psutil, ctypes': median %.1f ms" % (b * 1000))
    print("  full run  memprobe run (%d probes):                   median %.1f ms"
          % (len(_probes.REGISTRY), r * 1000))
    print("  ratio run/baseline: %.2f (target <= 2.0)" % (r / b))
    print("  fork isolation cost per probe in a run (%d probes, each in its own process):"
          % len(ids))
    for jobs, ms in sorted(per_probe.items()):
        print("    --jobs %d: %.2f ms per probe, probe work included (target <= 2 ms)" % (jobs, ms))
    print("  latency of one isolated probe: %.2f ms (isolated map_rx %.2f ms - in-process %.2f ms;"
          " a bare fork()+_exit()+waitpid() alone: %.2f ms)"
          % (overhead_ms, statistics.median(isolated) * 1000, statistics.median(inproc) * 1000,
             statistics.median(forks) * 1000))
    print("  policy detection (all detectors, warm): median %.2f ms" % detect_ms)
    print("  peak RSS of a full run: %.1f MiB (max over runs)" % (max(rss) / 1024))


if __name__ == "__main__":
    main()
