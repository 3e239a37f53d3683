"""Only the operation under test can make `denied`; memprobe's own failures are `error`.

Against the real kernel: /proc hidden by a tmpfs in a private mount namespace, a real
RLIMIT_NOFILE, a real SIGKILL from outside, a real seccomp filter.
"""

import json
import os
import resource
import signal
import subprocess
import sys
import time

import pytest

from probe.engine import probes as _probes
from probe.engine import runner as _runner
from probe.engine import worker as _worker
from conftest import CONFINE, ROOT, UNAVAILABLE, memprobe_env, run_cli


def run_confined(confine, *args):
    """A JSON report from `memprobe run ARGS` under tests/helpers/confine.py CONFINE (skip where
    the kernel lacks the feature)."""
    proc = run_cli("run", "--format", "json", "--output", "-", *args, confine=confine)
    if proc.returncode == UNAVAILABLE:
        pytest.skip(proc.stderr.strip())
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def outcomes(report):
    return {pid: v["outcome"] for pid, v in report["probes"].items()}


# --- no /proc --------------------------------------------------------------------------------

@pytest.mark.skipif(os.geteuid() != 0, reason="mounting over /proc in a mount namespace needs root")
def test_without_proc_the_read_back_is_unavailable_and_every_verdict_stands(reports):
    hidden = run_confined(["--no-proc"])
    plain = reports.get("plain")
    assert outcomes(hidden) == outcomes(plain)
    assert {k: v["state"] for k, v in hidden["summary"].items()} == \
        {k: v["state"] for k, v in plain["summary"].items()}
    assert {k: v["verdict"] for k, v in hidden["strategies"].items()} == \
        {k: v["verdict"] for k, v in plain["strategies"].items()}
    assert hidden["recommendation"] == plain["recommendation"]
    steps = hidden["probes"]["flip_rw_rx"]["steps"]
    for step in (s for s in steps if s["name"] in ("mmap_rw", "mprotect_rx")):
        assert "perms" not in step
        assert "could not be read back" in step["perms_unavailable"]
        assert "ENOENT" in step["perms_unavailable"]
    assert "could not be read back" in hidden["probes"]["map_rx"]["detail"]


# --- descriptor limits -----------------------------------------------------------------------

def _nofile(limit):
    def apply():
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    return apply


def test_a_descriptor_limit_is_never_a_refusal():
    # Four probes at once under a tight RLIMIT_NOFILE (the parent itself may give up at
    # the lowest limits): whatever report comes out, no probe reads `denied EMFILE`.
    cmd = [sys.executable, "-m", "probe", "run", "--jobs", "4", "--format", "json", "--output", "-"]
    produced = []
    for limit in (12, 11, 10, 9):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=memprobe_env(), cwd=ROOT,
                              timeout=120, preexec_fn=_nofile(limit))
        if proc.returncode != 0:
            assert "Too many open files" in proc.stderr, proc.stderr
            continue
        r = json.loads(proc.stdout)
        produced.append(limit)
        for pid, v in r["probes"].items():
            assert v["errno_name"] != "EMFILE", (limit, pid, v)
            if v["outcome"] == "error":
                assert "setup step" in v["detail"], (limit, pid, v)
    assert produced


def _no_free_descriptor(wfd):
    highest = max(int(fd) for fd in os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 1, highest + 1))
    try:
        while True:                          # fill every slot below the limit
            os.dup(wfd)
    except OSError:
        pass


def _no_more_address_space(wfd):
    with open("/proc/self/status") as f:     # VmSize: what RLIMIT_AS is checked against
        in_use = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (in_use, in_use))


def run_probe_limited(probe_id, limit):
    """Run one probe through the worker's entry point in a forked child that limit(wfd)
    has starved of a resource; its verdict."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            limit(wfd)
        finally:
            _worker.child_main(probe_id, wfd, _runner.detect_arch())   # never returns
    os.close(wfd)
    raw = _runner.watch(_runner._Child(pid, rfd), 10.0)
    return _runner.classify(_probes.by_id()[probe_id], raw, 10.0)


def run_probe_without_descriptors(probe_id):
    return run_probe_limited(probe_id, _no_free_descriptor)


@pytest.mark.parametrize("probe_id", ["dual_map_file", "patch_file_text", "dual_map_memfd"])
def test_a_setup_step_that_fails_is_an_error_with_a_detail(probe_id):
    v = run_probe_without_descriptors(probe_id)
    assert v["outcome"] == "error", v
    assert v["errno_name"] is None
    assert "setup step open failed, before the operation under test" in v["detail"]
    assert "EMFILE" in v["detail"]


def test_enomem_outside_the_call_under_test_is_an_error():
    # exec_rw's only mmap is its scratch RW page: setup. Out of address space, the probe
    # cannot start, which says nothing about NX.
    v = run_probe_limited("exec_rw", _no_more_address_space)
    assert v["outcome"] == "error", v
    assert "setup step mmap_rw failed, before the operation under test: ENOMEM" in v["detail"]


def test_a_probe_that_needs_no_descriptor_still_runs_without_its_read_back():
    v = run_probe_without_descriptors("flip_rw_rx")
    assert (v["outcome"], v["value"]) == ("allowed", 23)
    step = next(s for s in v["steps"] if s["name"] == "mprotect_rx")
    assert "EMFILE" in step["perms_unavailable"]


# --- an outside SIGKILL ----------------------------------------------------------------------

def _children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


@pytest.mark.parametrize("probe_id, capability", [("flip_rw_rx", "wx_flip"), ("exec_rw", "nx")])
def test_an_outside_sigkill_is_killed_but_the_capability_unknown(probe_id, capability):
    # The OOM killer's way: SIGKILL from outside, while the probe hangs (test hook).
    cmd = [sys.executable, "-m", "probe", "run", "--only", probe_id, "--timeout", "60",
           "--format", "json", "--output", "-"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=memprobe_env(MEMPROBE_TEST_HANG=probe_id), cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        children = []
        while not children and time.monotonic() < deadline:
            time.sleep(0.05)
            children = _children(proc.pid)
        assert len(children) == 1, children
        time.sleep(0.2)                      # let it announce its step
        os.kill(children[0], signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    r = json.loads(out)
    v = r["probes"][probe_id]
    assert (v["outcome"], v["signal"]) == ("killed", "SIGKILL")
    assert r["policies"]["pax"]["state"] == "absent"
    assert r["summary"][capability]["state"] == "unknown", r["summary"][capability]
    assert "OOM killer" in r["summary"][capability]["text"]
    if capability in r["strategies"]:
        assert r["strategies"][capability]["verdict"] == "unknown"
    assert [a["mechanism"] for a in v["attribution"]] == ["unknown"]


# --- memfd_create and ENOSYS -----------------------------------------------------------------

def test_memfd_enosys_under_a_seccomp_filter_is_seccomp_likely():
    r = run_confined(["--syscall-errno", "memfd_create=ENOSYS"],
                     "--only", "dual_map_memfd", "dual_map_shm")
    v = r["probes"]["dual_map_memfd"]
    assert (v["outcome"], v["step"], v["errno_name"]) == ("denied", "open", "ENOSYS")
    assert [(a["mechanism"], a["confidence"]) for a in v["attribution"]] == [("seccomp", "likely")]
    evidence = " | ".join(v["attribution"][0]["evidence"])
    assert "memfd_create" in evidence and "Seccomp: 2" in evidence
    assert r["probes"]["dual_map_shm"]["outcome"] == "allowed"
    assert r["strategies"]["dual_mapping"]["variants"] == {"memfd": "blocked", "shm": "works"}
