"""Helpers shared by the output tests: run memprobe in a child, the writers, a small report."""

import os
import subprocess
import sys

import pytest

from conftest import ROOT, memprobe_env

F_SETPIPE_SZ = 1031   # Linux fcntl; in the fcntl module only from Python 3.10
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mknod, chown)")


def memprobe(*args, env=None, **kwargs):
    """`python -m probe ARGS` in a child; CompletedProcess with bytes output."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.run([sys.executable, "-m", "probe"] + list(args), env=env or memprobe_env(),
                          cwd=ROOT, timeout=120, **kwargs)


def one_error_line(proc):
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 1, (proc.returncode, err)
    assert err.count("\n") == 1 and err.startswith("memprobe: error: "), err
    assert "Traceback" not in err
    return err


def make_base(tmp_path_factory):
    """A small real report and an expectations file it meets."""
    directory = tmp_path_factory.mktemp("base")
    report = str(directory / "base.json")
    proc = memprobe("run", "--only", "map_rwx", "exec_rw", "-q", "--format", "json", "--output", report)
    assert proc.returncode == 0, proc.stderr
    expect = directory / "expect.yaml"
    expect.write_text("map_rwx: allowed\n")
    key = directory / "redact.key"     # `redact` reads no key of this machine's then
    key.write_text("0123456789abcdef0123456789abcdef\n")
    return {"report": report, "expect": str(expect), "env": memprobe_env(MEMPROBE_REDACT_KEY_FILE=str(key))}


# writer name -> argv writing to TARGET
WRITERS = {
    "run --output": lambda t, b: ["run", "--only", "map_rwx", "-q", "--output", t],
    "run --junit": lambda t, b: ["run", "--only", "map_rwx", "-q", "--output", "-", "--junit", t],
    "matrix --output": lambda t, b: ["matrix", b["report"], "--output", t],
    "diff --output": lambda t, b: ["diff", b["report"], b["report"], "--output", t],
    "check --save": lambda t, b: ["check", "--expect", b["expect"], "--run", "--save", t],
    "check --junit": lambda t, b: ["check", "--expect", b["expect"], b["report"], "--junit", t],
    "redact --output": lambda t, b: ["redact", b["report"], "--output", t],
}


def write_with(writer, target, base, **kwargs):
    proc = memprobe(*WRITERS[writer](str(target), base), env=base["env"], **kwargs)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc


def mknod_or_skip(path, kind, major, minor):
    try:
        os.mknod(str(path), kind | 0o644, os.makedev(major, minor))
    except PermissionError as exc:
        pytest.skip("mknod refused: %s" % exc)
