"""memprobe matrix: runs of one host by different users, redacted ones included."""

import json
import os
import subprocess
import sys

import pytest

from probe.render import rows as _rows

from helpers.collect_fixtures import ROOT, cli
from helpers.uids import home_for, interpreter_for, shared_dir  # noqa: F401 - fixture

CONFINE = os.path.join(ROOT, "tests", "helpers", "confine.py")


def _redacted_run(directory, name, uid=None):
    python = sys.executable if uid is None else interpreter_for(uid)
    cmd = [python, "-m", "probe", "run", "--redact", "--only", "map_rx", "--format", "json", "--quiet",
           "--output", str(directory / name)]
    if uid is not None:
        cmd = [sys.executable, CONFINE, "--uid", str(uid), "--"] + cmd
    home = str(directory) if uid is None else home_for(directory, uid)
    # One key for both users, so both reports name the same host (a host without a machine
    # id would otherwise key each user's runs with a key of their own).
    key = directory / "redact.key"
    if not key.exists():
        key.write_bytes(os.urandom(32))
        os.chmod(str(key), 0o644)
    env = dict(os.environ, PYTHONPATH=str(directory / "src"), HOME=home, TMPDIR="/tmp",
               MEMPROBE_REDACT_KEY_FILE=str(key))
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=str(directory), env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_redacted_non_root_run_is_labelled_non_root(shared_dir):  # noqa: F811
    import shutil

    if os.geteuid() != 0:
        pytest.skip("running as another uid needs root")

    shutil.copytree(os.path.join(ROOT, "probe"), str(shared_dir / "src" / "probe"))
    reports = shared_dir / "reports"
    reports.mkdir()
    os.chmod(str(reports), 0o777)
    _redacted_run(shared_dir, "reports/nobody.json", uid=65534)
    with open(str(reports / "nobody.json")) as f:
        assert json.load(f)["process"]["euid"] is None       # what redaction writes for non-root
    _redacted_run(shared_dir, "reports/root.json")
    status, out, err = cli("matrix", "-f", "json", str(reports))
    assert status == 0, err
    labels = sorted(host["label"] for host in json.loads(out)["hosts"])
    assert labels[0].endswith(" [non-root]"), labels
    assert "None" not in out
    assert labels[1].endswith(" [uid 0]") and len(labels) == 2


def test_user_tag():
    assert _rows.user_tag(_rows.NON_ROOT) == "non-root"
    assert _rows.user_tag(0) == "uid 0" and _rows.user_tag(1000) == "uid 1000"
    assert _rows.user_of({"process": {"euid": None}}) is None         # not redacted: unknown, not "non-root"
    assert _rows.user_of({"redacted": {}, "process": {"euid": None}}) == "non-root"
    assert _rows.user_of({"redacted": {}, "process": {"euid": 0}}) == 0
