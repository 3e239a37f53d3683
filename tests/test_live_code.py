"""The live code of repatch_rx and patch_rwx: setup, made another way where the flip is
refused, so a policy is seen refusing the step the probe is named for.

Real kernel confinement (tests/helpers/confine.py); the rules for PaX, which this kernel cannot
have, are checked on synthetic reports in test_attribution.py.
"""

import json

import pytest

from probe.report import validator as _schema

from conftest import UNAVAILABLE, memprobe_env, run_cli

REPATCHING = (("repatch_rx", "mprotect_rx_again"), ("patch_rwx", "mprotect_rwx"))


def run_confined(confine, tmp_path, **env):
    out = tmp_path / "report.json"
    proc = run_cli("run", "--format", "json", "--quiet", "--output", str(out),
                   "--only", "repatch_rx", "patch_rwx", "map_rx", "mprotect_rx_noop",
                   confine=confine, env=memprobe_env(**env))
    if proc.returncode == UNAVAILABLE:
        pytest.skip(proc.stderr.strip())
    assert proc.returncode == 0, proc.stderr
    r = json.loads(out.read_text())
    assert _schema.validate(r) == []
    return r


def att(r, pid):
    return [(a["mechanism"], a["confidence"]) for a in r["probes"][pid].get("attribution", ())]


def test_mdwe_with_memfd_refused_maps_live_code_from_a_temporary_file(tmp_path):
    r = run_confined(["--mdwe", "--syscall-errno", "memfd_create=EPERM"], tmp_path)
    for pid, step in REPATCHING:
        v = r["probes"][pid]
        assert (v["outcome"], v["errno_name"], v["step"], v["live_code"]) == (
            "denied", "EACCES", step, "file"), (pid, v)
        names = [s["name"] for s in v["steps"]]
        assert "open_live_memfd" in names and "open_live_file" in names
        # the temporary file lives in $TMPDIR, whose mount the detector read (not noexec)
        assert att(r, pid) == [("mdwe", "confirmed")]


def test_every_way_refused_is_a_setup_error_never_denied(tmp_path):
    # MDWE refuses the flip, the filter refuses memfd_create, and $TMPDIR is a noexec
    # /dev/shm, where mapping the temporary file RX is refused.
    r = run_confined(["--mdwe", "--syscall-errno", "memfd_create=EPERM", "--noexec-shm"],
                     tmp_path, TMPDIR="/dev/shm")
    for pid, _ in REPATCHING:
        v = r["probes"][pid]
        assert v["outcome"] == "error", (pid, v)
        assert "live_code" not in v
        assert "no way to make live RX code" in v["detail"]
        for way in ("memfd", "file", "flip"):
            assert way in v["detail"], way
        assert att(r, pid) == [("unknown", "unknown")]
    assert r["strategies"]["code_repatching"]["verdict"] == "unknown"


def test_real_mdwe_repatching_is_mdwe_at_the_named_step(reports):
    r = reports.get("mdwe")
    for pid, step in REPATCHING:
        assert r["probes"][pid]["step"] == step
        assert att(r, pid) == [("mdwe", "confirmed")], r["probes"][pid]
