"""Benchmark: `memprobe matrix` over many reports vs a raw yaml.CSafeLoader parse.

    python benchmarks/bench_matrix.py [--count 10000] [--repeat 2] [--keep DIR]

Generates COUNT realistic, varied YAML reports in a temporary directory (hosts,
operating systems, CPUs, kernels, confinements, outcomes, errnos, signals and
some repeated runs of one host), starting from a real `memprobe run` of this
machine so the field layout and sizes are the real ones. Then, in the same run,
times (best of REPEAT, each in a fresh child process):

  raw      read every file and yaml.load() it with yaml.CSafeLoader, one core
  matrix   memprobe matrix DIR --format json (default: one worker per CPU)
  matrix1  the same with --jobs 1

and prints matrix/raw (target <= 1.3) and the peak RSS of each child
(os.wait4's ru_maxrss: the largest of the process and the workers it reaped).
"""

import argparse
import copy
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

OSES = [
    ("linux", ["6.18.44-fc", "6.1.0-28-amd64", "5.15.0-119-generic", "6.8.0-45-generic", "4.9.337-hardened-r1"]),
    ("freebsd", ["14.1-RELEASE", "13.3-RELEASE-p4"]),
    ("netbsd", ["10.0"]),
    ("openbsd", ["7.5"]),
]
ARCHES = ["x86_64", "x86_64", "x86_64", "aarch64", "aarch64", "riscv64", "ppc64le", "s390x", "i386", "arm"]
DISTROS = [("debian", "Debian GNU/Linux", "12"), ("ubuntu", "Ubuntu", "24.04"), ("gentoo", "Gentoo", "2.15"),
           ("fedora", "Fedora Linux", "40"), ("alpine", "Alpine Linux", "3.20")]

# Confinement -> probe -> (outcome, errno name, signal); anything not listed keeps the base result.
_FLIPS = ("flip_rw_rx", "flip_rw_rwx", "repatch_rx", "patch_rwx", "flip_heap", "flip_stack", "patch_file_text")
PROFILES = {
    "plain": {},
    "mdwe": {p: ("denied", "EACCES", None) for p in _FLIPS + ("map_rwx", "read_implies_exec")},
    "seccomp": dict({p: ("denied", "EPERM", None) for p in _FLIPS + ("map_rwx", "mprotect_rx_noop")}),
    "seccomp-kill": {p: ("crashed", None, "SIGSYS") for p in _FLIPS + ("map_rwx",)},
    "pax": dict({p: ("denied", "EACCES", None) for p in _FLIPS},
                map_rwx=("denied", "EPERM", None), exec_rw=("killed", None, "SIGKILL")),
    "selinux": {p: ("denied", "EACCES", None) for p in _FLIPS + ("map_rwx", "map_rx", "dual_map_memfd")},
    "openbsd": {p: ("denied", "ENOTSUP", None) for p in ("map_rwx", "flip_rw_rwx", "patch_rwx")},
    "noexec-shm": {"dual_map_shm": ("denied", "EPERM", None)},
}
ERRNOS = {"EACCES": 13, "EPERM": 1, "ENOTSUP": 95}
SIGNALS = {"SIGSYS": 31, "SIGKILL": 9, "SIGSEGV": 11}


def base_report():
    """A real report of this machine (JSON), from `memprobe run`."""
    proc = subprocess.run([sys.executable, "-m", "probe", "run", "--format", "json", "--output", "-"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    if proc.returncode != 0:
        sys.exit("bench_matrix: memprobe run failed: %s" % proc.stderr.strip())
    return json.loads(proc.stdout)


def vary(base, rng, index, hostnames):
    from probe.report import build as _report

    report = copy.deepcopy(base)
    os_name, kernels = rng.choice(OSES)
    arch = rng.choice(ARCHES)
    host = report["host"]
    host.update(os=os_name, hostname=rng.choice(hostnames), kernel_release=rng.choice(kernels), machine=arch,
                arch=arch, pointer_bits=32 if arch in ("i386", "arm") else 64,
                byte_order="big" if arch == "s390x" else "little")
    dist = rng.choice(DISTROS) if os_name == "linux" else (os_name, os_name.capitalize(), "")
    host["distribution"] = {"id": dist[0], "name": dist[1], "version": dist[2]}
    if arch != "x86_64" and rng.random() < 0.5:
        host["provenance"] = {"method": "qemu-user", "emulator": "qemu-%s 8.2.2" % arch}
    profile = "openbsd" if os_name == "openbsd" else rng.choice(list(PROFILES))
    process = report["process"]
    process["mdwe"] = 1 if profile == "mdwe" else 0
    process["seccomp_mode"] = 2 if profile.startswith("seccomp") else 0
    process["seccomp_filters"] = 1 if profile.startswith("seccomp") else 0
    process["uid"] = process["euid"] = rng.choice([0, 0, 1000, 65534])
    for pid, result in report["probes"].items():
        change = PROFILES[profile].get(pid)
        if rng.random() < 0.02:  # the odd unusual result
            change = rng.choice([("timeout", None, None), ("wrong_result", None, None), ("skipped", None, None),
                                 ("error", None, None)])
        if change:
            outcome, errno_name, signal = change
            result.update(outcome=outcome, errno_name=errno_name, errno=ERRNOS.get(errno_name), signal=signal,
                          signal_number=SIGNALS.get(signal), value=None,
                          detail="%s (benchmark variation %s)" % (outcome, profile))
            if outcome == "wrong_result":
                result["value"] = 0
        result["duration_ms"] = round(rng.uniform(0.5, 9.0), 3)
    report["generated_at"] = "2026-%02d-%02dT%02d:%02d:%02dZ" % (
        rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59), index % 60)
    report["summary"] = _report.summarise(report["probes"])
    if _attribution is not None and "policies" in report:
        _attribution.attribute(report)  # attribution, strategies, recommendation as a run writes them
    return report


try:
    from probe.attribution import attribute as _attribution
except ImportError:  # an engine without attribution: reports without it
    _attribution = None


def generate(directory, count, seed=1):
    from probe.report import build as _report

    rng = random.Random(seed)
    base = base_report()
    # Fewer names than reports: some hosts are probed more than once.
    hostnames = ["%s-%04d" % (rng.choice(["ci", "build", "web", "db", "edge", "node"]), i)
                 for i in range(int(count * 0.8))]
    total = 0
    for i in range(count):
        sub = os.path.join(directory, "batch-%02d" % (i % 20))  # like CI artifact folders
        os.makedirs(sub, exist_ok=True)
        text = _report.dumps(vary(base, rng, i, hostnames), "yaml")
        with open(os.path.join(sub, "report-%05d.yaml" % i), "w", encoding="utf-8") as f:
            f.write(text)
        total += len(text)
        if sys.stderr.isatty() and i % 500 == 0:
            sys.stderr.write("\rgenerating %d/%d" % (i, count))
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")
    return total


RAW = """
import os, sys, yaml
n = 0
for root, dirs, files in os.walk(sys.argv[1]):
    dirs.sort()
    for name in sorted(files):
        with open(os.path.join(root, name), "rb") as f:
            yaml.load(f.read(), Loader=yaml.CSafeLoader)
        n += 1
print(n)
"""


def timed_wait4(cmd):
    """(wall seconds, peak RSS MiB) of one child; wait4 gives this child's own rusage."""
    start = time.perf_counter()
    with open(os.devnull, "wb") as devnull:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=devnull, stderr=subprocess.PIPE,
                                env=dict(os.environ, PYTHONPATH=ROOT))
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit("bench_matrix: %s failed (%d): %s" % (" ".join(cmd[:5]), proc.returncode, err.decode()[-500:]))
    return wall, usage.ru_maxrss / 1024.0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each measurement; the best counts")
    parser.add_argument("--keep", metavar="DIR", help="generate into DIR and keep it (reused if it exists)")
    parser.add_argument("--no-single", action="store_true", help="skip the --jobs 1 measurement")
    args = parser.parse_args(argv)

    directory = args.keep or tempfile.mkdtemp(prefix="memprobe-bench-matrix-")
    try:
        existing = sum(len(f) for _, _, f in os.walk(directory)) if os.path.isdir(directory) else 0
        if existing != args.count:
            if args.keep and existing:
                shutil.rmtree(directory)
            os.makedirs(directory, exist_ok=True)
            start = time.perf_counter()
            size = generate(directory, args.count)
            print("generated %d reports (%.1f MiB, %.0f bytes each) in %.1f s"
                  % (args.count, size / 2 ** 20, size / args.count, time.perf_counter() - start))
        else:
            print("reusing %d reports in %s" % (existing, directory))

        raw_cmd = [sys.executable, "-c", RAW, directory]
        matrix_cmd = [sys.executable, "-m", "probe", "matrix", directory, "--format", "json", "--output", os.devnull]
        runs = {"raw": [], "matrix": [], "matrix1": []}
        for _ in range(max(1, args.repeat)):
            runs["raw"].append(timed_wait4(raw_cmd))
            runs["matrix"].append(timed_wait4(matrix_cmd))
            if not args.no_single:
                runs["matrix1"].append(timed_wait4(matrix_cmd + ["--jobs", "1"]))
        best = {k: min(v) for k, v in runs.items() if v}
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:
            cpus = os.cpu_count()
        print("reports: %d, CPUs: %d, best of %d" % (args.count, cpus, max(1, args.repeat)))
        print("raw yaml.CSafeLoader parse: %7.2f s  (%.2f ms/report)  peak RSS %6.1f MiB"
              % (best["raw"][0], best["raw"][0] / args.count * 1e3, max(r[1] for r in runs["raw"])))
        print("memprobe matrix:            %7.2f s  (%.2f ms/report)  peak RSS %6.1f MiB"
              % (best["matrix"][0], best["matrix"][0] / args.count * 1e3, max(r[1] for r in runs["matrix"])))
        if "matrix1" in best:
            print("memprobe matrix --jobs 1:   %7.2f s  (%.2f ms/report)  peak RSS %6.1f MiB"
                  % (best["matrix1"][0], best["matrix1"][0] / args.count * 1e3,
                     max(r[1] for r in runs["matrix1"])))
        ratio = best["matrix"][0] / best["raw"][0]
        print("matrix / raw parse = %.2f (target <= 1.3)" % ratio)
        if "matrix1" in best:
            print("matrix --jobs 1 / raw parse = %.2f" % (best["matrix1"][0] / best["raw"][0]))
    finally:
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
