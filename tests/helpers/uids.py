"""Running memprobe as another uid: an interpreter that uid can run, a directory it can reach."""

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest

CONFINE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "confine.py")


def interpreter_for(uid):
    """An interpreter with PyYAML that `uid` may run (ours may live under /root)."""
    for candidate in (os.path.realpath(sys.executable), "/usr/bin/python3"):
        proc = subprocess.run([sys.executable, CONFINE, "--uid", str(uid), "--", candidate, "-c",
                               "import yaml"], capture_output=True, timeout=60)
        if proc.returncode == 0:
            return candidate
    pytest.skip("no interpreter with PyYAML that uid %d can run" % uid)


def home_for(directory, uid):
    """A home directory owned by `uid` inside `directory`, as a real user has one (memprobe
    keeps its redaction key there on a host without a machine id)."""
    home = os.path.join(str(directory), "home-%d" % uid)
    os.mkdir(home, 0o700)
    os.chown(home, uid, uid)
    return home


@pytest.fixture
def shared_dir():
    """A directory every uid can reach (pytest's own tmp_path sits in a 0700 tree)."""
    path = tempfile.mkdtemp(prefix="memprobe-test-")
    os.chmod(path, 0o755)
    yield pathlib.Path(path)
    shutil.rmtree(path)
