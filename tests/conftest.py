"""Shared fixtures: real `memprobe run` reports under real kernel confinement.

Each configuration runs once per session (the CLI in a child process that applies the
confinement before exec) and is shared by the engine, attribution and collector tests.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFINE = os.path.join(ROOT, "tests", "helpers", "confine.py")
UNAVAILABLE = 77

# name -> options for tests/helpers/confine.py
CONFINEMENTS = {
    "plain": [],
    "mdwe": ["--mdwe"],
    "seccomp": ["--seccomp", "errno"],
    "seccomp-kill": ["--seccomp", "kill"],
    "noexec-shm": ["--noexec-shm"],
}


def memprobe_env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    env.pop("MEMPROBE_TEST_HANG", None)
    env.pop("MEMPROBE_TEST_PROTOCOL_VERSION", None)
    env.update(extra)
    return env


def run_cli(*args, confine=(), env=None, cwd=None, timeout=120):
    """Run `python -m probe ARGS` (optionally under tests/helpers/confine.py); CompletedProcess."""
    cmd = [sys.executable, "-m", "probe"] + list(args)
    if confine:
        cmd = [sys.executable, CONFINE] + list(confine) + ["--"] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, env=env or memprobe_env(),
                          cwd=cwd or ROOT, timeout=timeout)


class Reports:
    """Lazily produced reports, one per confinement, saved under a session directory."""

    def __init__(self, directory):
        self.directory = directory
        self._done = {}

    def path(self, name):
        self.get(name)
        return os.path.join(self.directory, "%s.json" % name)

    def get(self, name):
        if name not in self._done:
            path = os.path.join(self.directory, "%s.json" % name)
            proc = run_cli("run", "--format", "json", "--output", path, "--quiet",
                           confine=CONFINEMENTS[name])
            if proc.returncode == UNAVAILABLE:
                self._done[name] = ("skip", proc.stderr.strip())
            else:
                assert proc.returncode == 0, proc.stderr
                with open(path) as f:
                    self._done[name] = ("ok", json.load(f))
        kind, value = self._done[name]
        if kind == "skip":
            pytest.skip(value)
        return value


@pytest.fixture(scope="session")
def reports(tmp_path_factory):
    return Reports(str(tmp_path_factory.mktemp("reports")))
