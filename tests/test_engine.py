"""The probe engine against the real kernel: verdicts under real confinement."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from probe.report import validator as _schema
from conftest import ROOT, memprobe_env, run_cli

CODE_PROBES_ALLOWED_PLAIN = ["flip_rw_rx", "map_rwx", "flip_rw_rwx", "repatch_rx", "patch_rwx",
                             "dual_map_memfd", "dual_map_shm", "dual_map_file", "flip_heap",
                             "flip_stack", "patch_file_text", "read_implies_exec"]


def outcome(report, pid):
    return report["probes"][pid]["outcome"]


def assert_valid(report):
    assert _schema.validate(report) == []


@pytest.mark.parametrize("name", ["plain", "mdwe", "seccomp", "seccomp-kill", "noexec-shm"])
def test_every_report_matches_the_schema(reports, name):
    assert_valid(reports.get(name))


def test_plain_host_verdicts(reports):
    r = reports.get("plain")
    assert r["probes"]["exec_rw"]["outcome"] == "crashed"
    assert r["probes"]["exec_rw"]["signal"] == "SIGSEGV"
    assert r["probes"]["exec_rw"]["step"] == "call"
    for pid in ("exec_heap", "exec_stack"):
        assert outcome(r, pid) == "crashed", pid
        assert r["probes"][pid]["signal"] == "SIGSEGV"
    for pid in CODE_PROBES_ALLOWED_PLAIN:
        assert outcome(r, pid) == "allowed", (pid, r["probes"][pid])
        assert r["probes"][pid]["value"] == r["probes"][pid]["expected"]
    assert r["probes"]["repatch_rx"]["value"] == 42
    assert r["probes"]["patch_rwx"]["value"] == 42
    assert outcome(r, "map_rx") == "allowed"
    assert r["summary"]["nx"]["state"] == "enforced"
    assert r["summary"]["wx_flip"]["state"] == "works"
    assert r["summary"]["dual_mapping"]["state"] == "works"
    flip = r["measurements"]["flip_cycle_ns"]
    assert flip["outcome"] == "measured" and flip["median_ns"] > 0


def test_perms_are_read_back_after_each_mapping_step(reports):
    steps = reports.get("plain")["probes"]["flip_rw_rx"]["steps"]
    perms = {s["name"]: s.get("perms") for s in steps}
    assert perms["mmap_rw"] == "rw-p"
    assert perms["mprotect_rx"] == "r-xp"


def test_mdwe_verdicts(reports):
    r = reports.get("mdwe")
    assert r["process"]["mdwe"] == 1
    for pid in ("flip_rw_rx", "map_rwx", "flip_rw_rwx", "repatch_rx", "patch_rwx"):
        v = r["probes"][pid]
        assert (v["outcome"], v["errno_name"], v["errno"]) == ("denied", "EACCES", 13), pid
    # Live code cannot be made by flipping, so the repatching probes map it RX from a
    # memfd; MDWE lets that go RX->RW (PaX MPROTECT would not) but refuses it going back
    # to RX, and refuses RX->RWX: the steps the probes are named for.
    for pid, step in (("repatch_rx", "mprotect_rx_again"), ("patch_rwx", "mprotect_rwx")):
        v = r["probes"][pid]
        assert (v["step"], v["live_code"]) == (step, "memfd"), pid
    assert next(s for s in r["probes"]["repatch_rx"]["steps"] if s["name"] == "mprotect_rw")["perms"] == "rw-p"
    v = r["probes"]["patch_file_text"]
    assert (v["outcome"], v["errno_name"], v["step"]) == ("denied", "EACCES", "mprotect_rx_again")
    for pid in ("map_rx", "mprotect_rx_noop", "dual_map_memfd"):
        assert outcome(r, pid) == "allowed", pid
    assert r["summary"]["wx_flip"]["state"] == "blocked"
    assert "EACCES" in r["summary"]["wx_flip"]["text"]


def test_seccomp_errno_verdicts(reports):
    r = reports.get("seccomp")
    assert r["process"]["seccomp_mode"] == 2 and r["process"]["no_new_privs"] is True
    for pid, step in (("flip_rw_rx", "mprotect_rx"), ("map_rwx", "mmap_rwx"),
                      ("mprotect_rx_noop", "mprotect_rx")):
        v = r["probes"][pid]
        assert (v["outcome"], v["errno_name"], v["step"]) == ("denied", "EPERM", step), pid
    assert outcome(r, "map_rx") == "allowed"
    assert outcome(r, "dual_map_memfd") == "allowed"


def test_seccomp_errno_repatching_is_refused_at_its_own_step(reports):
    # A filter is attached: the live code comes from a memfd, never from a flip the
    # filter could kill on; RX->RW passes the filter, RW->RX and RX->RWX do not.
    r = reports.get("seccomp")
    for pid, step in (("repatch_rx", "mprotect_rx_again"), ("patch_rwx", "mprotect_rwx")):
        v = r["probes"][pid]
        assert (v["outcome"], v["errno_name"], v["step"], v["live_code"]) == (
            "denied", "EPERM", step, "memfd"), pid
        assert "mprotect_rx" not in [s["name"] for s in v["steps"]]   # no flip was tried


def test_seccomp_kill_repatching_dies_at_its_own_step(reports):
    r = reports.get("seccomp-kill")
    for pid, step in (("repatch_rx", "mprotect_rx_again"), ("patch_rwx", "mprotect_rwx")):
        v = r["probes"][pid]
        assert (v["outcome"], v["signal"], v["step"], v["live_code"]) == (
            "crashed", "SIGSYS", step, "memfd"), pid


def test_plain_host_makes_live_code_by_flipping(reports):
    for pid in ("repatch_rx", "patch_rwx"):
        v = reports.get("plain")["probes"][pid]
        assert v["live_code"] == "flip"
        assert [s["name"] for s in v["steps"]][:3] == ["mmap_rw", "write", "mprotect_rx"]
    assert "live_code" not in reports.get("plain")["probes"]["flip_rw_rx"]


def test_seccomp_kill_action_is_a_crash_not_a_failed_run(reports):
    r = reports.get("seccomp-kill")
    for pid, step in (("flip_rw_rx", "mprotect_rx"), ("map_rwx", "mmap_rwx")):
        v = r["probes"][pid]
        assert (v["outcome"], v["signal"], v["step"]) == ("crashed", "SIGSYS", step), pid
    assert outcome(r, "map_rx") == "allowed"
    assert outcome(r, "dual_map_memfd") == "allowed"
    assert set(r["probes"]) >= set(CODE_PROBES_ALLOWED_PLAIN)   # the run completed


def test_read_implies_exec_runs_rw_memory(reports):
    v = reports.get("plain")["probes"]["read_implies_exec"]
    assert v["outcome"] == "allowed" and v["value"] == 23
    assert next(s for s in v["steps"] if s["name"] == "mmap_rw")["perms"] == "rwxp"


def test_noexec_dev_shm_denies_shm_double_mapping_only(reports):
    r = reports.get("noexec-shm")
    v = r["probes"]["dual_map_shm"]
    assert (v["outcome"], v["errno_name"], v["step"]) == ("denied", "EPERM", "mmap_rx_view")
    assert outcome(r, "dual_map_memfd") == "allowed"
    assert outcome(r, "dual_map_file") == "allowed"
    assert r["summary"]["dual_mapping"]["state"] == "works"


@pytest.mark.skipif(os.geteuid() != 0, reason="changing to uid 65534 needs root")
def test_unprivileged_uid(tmp_path):
    # Load everything as root, then drop to nobody and probe: the interpreter itself
    # may live where nobody cannot read (e.g. /root/.pyenv). The probe children must
    # not need to import anything.
    script = (
        "import json, os, sys\n"
        "from probe.report import collect as _cmd_run\n"
        "_cmd_run.collect(only=['map_rx'])\n"
        "os.chdir('/'); os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
        "r = _cmd_run.collect()\n"
        "json.dump(r, sys.stdout)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=memprobe_env(TMPDIR=str(tmp_path)), cwd=ROOT, timeout=120)
    os.chmod(tmp_path, 0o777)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["process"]["uid"] == 65534 and r["process"]["euid"] == 65534
    assert outcome(r, "exec_rw") == "crashed"
    for pid in ("flip_rw_rx", "map_rwx", "dual_map_memfd", "dual_map_shm"):
        assert outcome(r, pid) == "allowed", pid
    assert_valid(r)


def test_hanging_probe_times_out_and_the_run_completes(tmp_path):
    env = memprobe_env(MEMPROBE_TEST_HANG="map_rwx")
    proc = run_cli("run", "--timeout", "0.5", "--format", "json", "--output", "-",
                   "--only", "exec_rw", "map_rwx", "flip_rw_rx", env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert outcome(r, "map_rwx") == "timeout"
    assert r["probes"]["map_rwx"]["step"] == "test_hang"
    assert outcome(r, "flip_rw_rx") == "allowed"
    assert outcome(r, "exec_rw") == "crashed"


def test_no_core_file_and_no_temporary_file_left_behind(tmp_path):
    work, tmp = tmp_path / "cwd", tmp_path / "tmp"
    work.mkdir()
    tmp.mkdir()
    proc = run_cli("run", "--output", "out.yaml", "--quiet", env=memprobe_env(TMPDIR=str(tmp)),
                   cwd=str(work))
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(work)) == ["out.yaml"]    # kernel.core_pattern 'core' writes to cwd
    assert os.listdir(tmp) == []
    assert "exec_rw" in yaml.safe_load((work / "out.yaml").read_text())["probes"]


def test_parent_never_holds_a_wx_mapping():
    script = (
        "import json, sys\n"
        "from probe.report import collect as _cmd_run\n"
        "from probe.platform import impl\n"
        "def wx(): return [p for s, e, p, n in impl.maps_snapshot() if 'w' in p and 'x' in p]\n"
        "before = wx()\n"
        "r = _cmd_run.collect()\n"
        "json.dump({'before': before, 'after': wx(), 'map_rwx': r['probes']['map_rwx']['outcome']},"
        " sys.stdout)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=memprobe_env(), cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["map_rwx"] == "allowed"      # the children did hold RWX memory
    assert got["after"] == got["before"] == []


def test_spawn_isolation_gives_the_same_verdicts(reports):
    proc = run_cli("run", "--isolation", "spawn", "--format", "json", "--output", "-")
    assert proc.returncode == 0, proc.stderr
    spawned = json.loads(proc.stdout)
    assert spawned["process"]["isolation"] == "spawn"
    plain = reports.get("plain")
    assert {k: v["outcome"] for k, v in spawned["probes"].items()} == \
        {k: v["outcome"] for k, v in plain["probes"].items()}
    assert_valid(spawned)


def test_stdout_holds_only_the_report():
    proc = run_cli("run", "--only", "map_rx", "flip_rw_rx", "--output", "-")
    assert proc.returncode == 0
    doc = yaml.safe_load(proc.stdout)
    assert list(doc)[:5] == ["schema_version", "tool", "generated_at", "host", "process"]
    assert list(doc["probes"]) == ["flip_rw_rx", "map_rx"]   # registry order, not argv order
    proc = run_cli("run", "--only", "map_rx", "--output", "-", "--format", "json")
    assert json.loads(proc.stdout)["probes"]["map_rx"]["outcome"] == "allowed"


def test_default_report_path_is_written_atomically(tmp_path):
    proc = run_cli("run", "--only", "map_rx", "--quiet", cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    from probe.engine import runner as _runner
    files = os.listdir(tmp_path / "reports")
    prefix = "linux-%s-" % _runner.detect_arch()
    assert len(files) == 1 and files[0].startswith(prefix) and files[0].endswith(".yaml")
    assert "report written to reports/" in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["run", "--only", "nope"], "unknown probe id(s): nope"),
    (["run", "--timeout", "-1"], "--timeout must be a positive number"),
    (["run", "--timeout", "1e10"], "at most 86400"),
    (["run", "--timeout", "abc"], "is not a number"),
    (["run", "--isolation", "thread"], "invalid choice"),
    (["run", "--jobs", "0"], "--jobs must be at least 1"),
    (["frobnicate"], "invalid choice"),
    # without --quiet the report would still go to stdout (tests/test_output_safety.py)
    (["run", "--only", "map_rx", "--quiet", "--output", "/proc/nope/report.yaml"], "cannot write"),
])
def test_bad_input_is_one_line_and_exit_1(args, message):
    proc = run_cli(*args)
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert message in lines[-1] and "Traceback" not in proc.stderr
    assert lines[-1].startswith("memprobe: error:")


def test_an_unknown_command_is_offered_the_commands_but_not_the_internal_ones():
    proc = run_cli("frobnicate")
    assert proc.returncode == 1
    assert "run" in proc.stderr and "capture-fixture" in proc.stderr
    assert "_worker" not in proc.stderr


def test_list_and_version():
    proc = run_cli("list")
    ids = [line.split()[0] for line in proc.stdout.splitlines()]
    from probe.engine import probes as _probes
    assert ids == [p.id for p in _probes.REGISTRY]
    assert "exec_rw" in ids and "read_implies_exec" in ids
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("memprobe ")


def test_help_documents_exit_codes():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for code in ("0 ", "1 ", "2 ", "3 ", "70 "):
        assert "\n  %s" % code in proc.stdout


def test_pax_defaults_runs_from_an_unmarked_copy_and_cleans_up(tmp_path):
    # This host's interpreter carries no PaX markings, so the copy is forced (test hook);
    # the run must go through the copy, say so, and leave nothing behind.
    env = memprobe_env(MEMPROBE_TEST_FORCE_UNMARKED_COPY="1", TMPDIR=str(tmp_path))
    proc = run_cli("run", "--pax-defaults", "--only", "flip_rw_rx", "map_rx", "--format", "json",
                   "--output", "-", env=env)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["process"]["unmarked_copy_of"] == os.path.realpath(sys.executable)
    assert r["process"]["interpreter"].startswith(str(tmp_path))
    assert r["probes"]["flip_rw_rx"]["outcome"] == "allowed"
    assert os.listdir(tmp_path) == []
    assert_valid(r)


def test_pax_defaults_on_an_unmarked_interpreter_runs_as_is():
    proc = run_cli("run", "--pax-defaults", "--only", "map_rx", "--format", "json", "--output", "-")
    assert proc.returncode == 0, proc.stderr
    assert "carries no PaX markings" in proc.stderr
    assert "unmarked_copy_of" not in json.loads(proc.stdout)["process"]


def test_one_probe_at_a_time_gives_the_same_verdicts(reports):
    proc = run_cli("run", "--jobs", "1", "--format", "json", "--output", "-")
    assert proc.returncode == 0, proc.stderr
    serial = json.loads(proc.stdout)
    plain = reports.get("plain")            # run with the default --jobs (CPUs, up to 4)
    assert list(serial["probes"]) == list(plain["probes"])
    assert {k: v["outcome"] for k, v in serial["probes"].items()} == \
        {k: v["outcome"] for k, v in plain["probes"].items()}
