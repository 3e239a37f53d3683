"""Every write to stdout is checked, and odd input is one line.

Failures are real: a /dev/full-like node made in tmp_path, RLIMIT_FSIZE, a closed descriptor,
a closed or non-blocking pipe, a host name set in a private UTS namespace.
"""

import fcntl
import os
import resource
import stat
import subprocess
import sys
import threading
import time

import pytest
import yaml

from helpers.output_helpers import F_SETPIPE_SZ, make_base, memprobe, mknod_or_skip, one_error_line
from conftest import ROOT, memprobe_env
from probe.report import load as _load


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return make_base(tmp_path_factory)


# --------------------------------------------------------------------------- stdout

def test_a_full_device_on_stdout_fails_the_run(tmp_path):
    full = tmp_path / "full"
    if os.geteuid() != 0:
        pytest.skip("needs root (mknod)")
    mknod_or_skip(full, stat.S_IFCHR, 1, 7)           # the same device as /dev/full: ENOSPC
    for argv in (["run", "--only", "map_rwx", "--output", "-"], ["list"]):
        with open(str(full), "wb") as stream:
            proc = memprobe(*argv, stdout=stream)
        assert "No space left on device" in one_error_line(proc)


FILE_SIZE_LIMIT = 1024     # below the size of both outputs tried


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


@pytest.mark.parametrize("argv", [["run", "--only", "map_rwx", "exec_rw", "--output", "-"],
                                  ["show", "BASE"]])
def test_a_file_size_limit_on_stdout_fails_the_run(tmp_path, base, argv):
    argv = [base["report"] if a == "BASE" else a for a in argv]
    out = tmp_path / "out"
    with open(str(out), "wb") as stream:
        proc = memprobe(*argv, stdout=stream, preexec_fn=_limit_file_size)
    assert "File too large" in one_error_line(proc)
    assert out.stat().st_size == FILE_SIZE_LIMIT       # the short write that came first


@pytest.mark.parametrize("argv", [["run", "--only", "map_rwx", "--output", "-"], ["show", "BASE"],
                                  ["validate", "BASE"], ["list"]])
def test_a_closed_stdout_is_one_line_and_exit_1(tmp_path, base, argv):
    argv = [base["report"] if a == "BASE" else a for a in argv]
    proc = memprobe(*argv, stdout=None, preexec_fn=lambda: os.close(1))
    assert "stdout" in one_error_line(proc)


def test_a_non_blocking_stdout_gets_every_byte(base):
    """A pipe in O_NONBLOCK mode (set by a parent such as node) fills up: writes return EAGAIN or
    short counts, which are waited out, not dropped."""
    expected = memprobe("matrix", "reports", "--format", "html", check=True).stdout
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, F_SETPIPE_SZ, 4096)          # the smallest pipe buffer: one page
    assert len(expected) > 4 * 4096                     # several times the pipe's buffer
    os.set_blocking(write_end, False)
    received = []

    def read_slowly():
        time.sleep(0.5)                                 # let the pipe fill first
        with os.fdopen(read_end, "rb") as stream:
            received.append(stream.read())

    reader = threading.Thread(target=read_slowly, daemon=True)
    reader.start()
    try:
        proc = memprobe("matrix", "reports", "--format", "html", stdout=write_end)
    finally:
        os.close(write_end)
    reader.join(30)
    assert proc.returncode == 0, proc.stderr
    assert received == [expected]


def test_a_closed_stderr_changes_no_exit_status(tmp_path):
    closed = {"stderr": None, "preexec_fn": lambda: os.close(2)}
    assert memprobe("run", "--bogus", **closed).returncode == 1
    proc = memprobe("run", "--only", "map_rwx", "--output", str(tmp_path / "r.yaml"), **closed)
    assert proc.returncode == 0
    assert yaml.safe_load(proc.stdout) == yaml.safe_load((tmp_path / "r.yaml").read_text())


@pytest.mark.parametrize("argv", [["run", "--only", "map_rwx", "exec_rw", "--output", "-"], ["show", "BASE"]])
def test_a_reader_that_leaves_early_is_quiet_but_not_success(base, argv):
    argv = [base["report"] if a == "BASE" else a for a in argv]
    read_end, write_end = os.pipe()
    os.close(read_end)                                  # every write gets EPIPE
    try:
        proc = memprobe(*argv, stdout=write_end)
    finally:
        os.close(write_end)
    assert proc.returncode == 1 and proc.stderr == b""


# --------------------------------------------------------------------------- hostname

SET_HOSTNAME = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(0x04000000) != 0:          # CLONE_NEWUTS: this host's name stays untouched
    sys.stderr.write("unavailable: unshare(CLONE_NEWUTS): %s\n" % os.strerror(ctypes.get_errno()))
    sys.exit(77)
name = bytes.fromhex(sys.argv[1])
if libc.sethostname(name, len(name)) != 0:
    sys.exit("sethostname: %s" % os.strerror(ctypes.get_errno()))
os.execv(sys.executable, [sys.executable, "-m", "probe"] + sys.argv[2:])
"""

RAW_HOSTNAME = b"h\xffst-\xc3\xa9t\xe9"     # not UTF-8, with a UTF-8 non-ASCII character in it
ESCAPED_HOSTNAME = "h\\xffst-\u00e9t\\xe9"


@pytest.mark.parametrize("encoding", [{"PYTHONIOENCODING": "ascii"},
                                      {"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"},
                                      {"LC_ALL": "C"}, {"PYTHONIOENCODING": "latin-1"}])
@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_a_hostname_that_is_not_utf8_gives_a_valid_escaped_report(tmp_path, encoding, fmt):
    env = memprobe_env(**encoding)
    env.pop("LANG", None)
    if "PYTHONIOENCODING" not in encoding:   # tox sets it to utf-8: the locale must decide here
        env.pop("PYTHONIOENCODING", None)
    saved = tmp_path / ("r." + fmt)
    junit = tmp_path / "j.xml"
    proc = subprocess.run([sys.executable, "-c", SET_HOSTNAME, RAW_HOSTNAME.hex(), "run", "--only", "map_rwx",
                           "--format", fmt, "--output", str(saved), "--junit", str(junit)],
                          capture_output=True, env=env, cwd=ROOT, timeout=120)
    if proc.returncode == 77:
        pytest.skip(proc.stderr.decode().strip())
    assert proc.returncode == 0, proc.stderr
    if "PYTHONIOENCODING" in encoding or "PYTHONUTF8" in encoding:
        assert proc.stdout.isascii()                    # escaped, whatever the encoding takes
    for data in (proc.stdout, saved.read_bytes()):
        doc = _load.parse_document(data, "report", fmt=fmt)
        assert _load.report_problems(doc) == []
        assert doc["host"]["hostname"] == ESCAPED_HOSTNAME
    assert ESCAPED_HOSTNAME in junit.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- input

def test_show_with_stdin_closed_is_one_line():
    proc = memprobe("show", "-", stdin=None, preexec_fn=lambda: os.close(0))
    assert "standard input is closed" in one_error_line(proc)


@pytest.mark.parametrize("value", ["99999999999999999999999999", "1e9", "-1", "0", "lots", str(1 << 31)])
@pytest.mark.parametrize("command", ["show", "validate", "matrix", "diff"])
def test_an_absurd_size_limit_is_one_line(base, value, command):
    argv = [command, base["report"]] + ([base["report"]] if command == "diff" else [])
    proc = memprobe(*argv, env=memprobe_env(MEMPROBE_MAX_REPORT_BYTES=value))
    assert "MEMPROBE_MAX_REPORT_BYTES" in one_error_line(proc)
    assert proc.stdout == b""


def test_a_large_size_limit_is_not_allocated_up_front(base):
    proc = memprobe("show", base["report"], env=memprobe_env(MEMPROBE_MAX_REPORT_BYTES=str(1 << 30)),
                    preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)))
    assert proc.returncode == 0, proc.stderr
