"""`--only` accumulates, and subset or confined runs never replace the full report at the
default path: they get a name of their own and say so on stderr. Confinement is real
(tests/helpers/confine.py, setarch), not mocked."""

import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import CONFINE, ROOT, UNAVAILABLE, memprobe_env, run_cli
from helpers.uids import interpreter_for, shared_dir  # noqa: F401 - shared_dir: a fixture

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="a full unconfined run needs root here")


def test_repeated_only_runs_every_named_probe():
    proc = run_cli("run", "--only", "exec_rw", "--only", "map_rx", "flip_rw_rx",
                   "--format", "json", "--output", "-")
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads(proc.stdout)["probes"]) == {"exec_rw", "map_rx", "flip_rw_rx"}


def _reports_in(directory):
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(str(directory), "reports", "*")))


def _full_run(cwd):
    proc = run_cli("run", "--quiet", cwd=str(cwd))
    assert proc.returncode == 0, proc.stderr
    [name] = _reports_in(cwd)
    with open(os.path.join(str(cwd), "reports", name), "rb") as f:
        return name, f.read()


def _default_run(cwd, *args, confine=(), env=None):
    """Run into the default path beside an existing full report; the new file's name."""
    before = set(_reports_in(cwd))
    proc = run_cli("run", "--quiet", *args, confine=confine, cwd=str(cwd), env=env)
    if proc.returncode == UNAVAILABLE:
        pytest.skip(proc.stderr.strip())
    assert proc.returncode == 0, proc.stderr
    [new] = sorted(set(_reports_in(cwd)) - before)
    assert "not a full unconfined run" in proc.stderr and new in proc.stderr
    return new, proc.stderr


@needs_root
def test_full_run_keeps_the_plain_default_name(tmp_path):
    name, _ = _full_run(tmp_path)
    assert name.startswith("linux-") and name.endswith(".yaml")
    assert not any(word in name for word in ("-only-", "-mdwe", "-seccomp", "-nonroot"))


@needs_root
@pytest.mark.parametrize("args, confine, part", [
    (("--only", "map_rx", "--only", "exec_rw"), (), "-only-exec_rw+map_rx"),
    ((), ("--mdwe",), "-mdwe"),
    ((), ("--seccomp", "errno"), "-seccomp"),
], ids=["only", "mdwe", "seccomp"])
def test_subset_or_confined_run_gets_its_own_name(tmp_path, args, confine, part):
    full_name, full_bytes = _full_run(tmp_path)
    new, err = _default_run(tmp_path, *args, confine=confine)
    assert new == full_name[:-len(".yaml")] + part + ".yaml"
    assert full_name in err           # names the full report it did not replace
    with open(str(tmp_path / "reports" / full_name), "rb") as f:
        assert f.read() == full_bytes


@needs_root
def test_non_root_run_gets_its_own_name(shared_dir):
    tmp_path = shared_dir
    full_name, full_bytes = _full_run(tmp_path)
    python = interpreter_for(65534)
    os.chmod(str(tmp_path / "reports"), 0o777)
    code = tmp_path / "src"                 # a copy of the package that uid 65534 can read
    shutil.copytree(os.path.join(ROOT, "probe"), str(code / "probe"))
    env = memprobe_env(HOME=str(tmp_path), TMPDIR="/tmp", PYTHONPATH=str(code))
    proc = subprocess.run([sys.executable, CONFINE, "--uid", "65534", "--", python, "-m", "probe",
                           "run", "--quiet", "--only", "map_rx"],
                          capture_output=True, text=True, cwd=str(tmp_path), env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    new = sorted(set(_reports_in(tmp_path)) - {full_name})
    assert new == [full_name[:-len(".yaml")] + "-only-map_rx-nonroot.yaml"]
    assert "nonroot" in proc.stderr
    with open(str(tmp_path / "reports" / full_name), "rb") as f:
        assert f.read() == full_bytes


@needs_root
@pytest.mark.skipif(shutil.which("setarch") is None, reason="setarch (util-linux) is not installed")
def test_personality_run_gets_its_own_name(tmp_path):
    full_name, _ = _full_run(tmp_path)
    before = set(_reports_in(tmp_path))
    proc = subprocess.run(
        ["setarch", os.uname().machine, "-R", sys.executable, "-m", "probe", "run", "--quiet",
         "--only", "map_rx"],
        capture_output=True, text=True, cwd=str(tmp_path), env=memprobe_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    [new] = sorted(set(_reports_in(tmp_path)) - before)
    assert new == full_name[:-len(".yaml")] + "-only-map_rx-personality.yaml"


@needs_root
def test_pax_defaults_copy_gets_its_own_name(tmp_path):
    full_name, _ = _full_run(tmp_path)
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = memprobe_env(MEMPROBE_TEST_FORCE_UNMARKED_COPY="1", TMPDIR=str(temp))
    new, _ = _default_run(tmp_path, "--pax-defaults", env=env)
    assert new == full_name[:-len(".yaml")] + "-pax-defaults.yaml"


def test_naming_every_probe_is_a_full_run(tmp_path):
    from probe.engine import probes as _probes
    from probe.report import report_name as _report_name
    every = [p.id for p in _probes.REGISTRY]
    report = {"host": {"os": "linux", "arch": "x86_64", "machine": "x86_64", "hostname": "h"},
              "process": {"euid": 0, "seccomp_mode": 0, "mdwe": 0, "personality": "0x00000000"}}
    assert _report_name.default_run_path(report, "yaml", every)[2] == []
    path, full, parts = _report_name.default_run_path(report, "json", every[:-1])
    assert len(os.path.basename(path)) < 120 and parts[0].startswith("only-%d-probes-" % (len(every) - 1))
    assert full == os.path.join("reports", "linux-x86_64-h.json")
