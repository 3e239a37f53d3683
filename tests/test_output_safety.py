"""Every writer of output: what is at the path survives, and a cut report never passes.

Device nodes, FIFOs and sockets are made inside tmp_path (never the system's own); stdout
failures are real (a /dev/full-like node, RLIMIT_FSIZE, a closed descriptor, a closed pipe).
"""

import fcntl
import json
import os
import resource
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

import pytest
import yaml

from conftest import ROOT, memprobe_env
from probe import _load

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


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A small real report and an expectations file it meets."""
    directory = tmp_path_factory.mktemp("base")
    report = str(directory / "base.json")
    proc = memprobe("run", "--only", "map_rwx", "exec_rw", "-q", "--format", "json", "--output", report)
    assert proc.returncode == 0, proc.stderr
    expect = directory / "expect.yaml"
    expect.write_text("map_rwx: allowed\n")
    return {"report": report, "expect": str(expect)}


# writer name -> argv writing to TARGET
WRITERS = {
    "run --output": lambda t, b: ["run", "--only", "map_rwx", "-q", "--output", t],
    "run --junit": lambda t, b: ["run", "--only", "map_rwx", "-q", "--output", "-", "--junit", t],
    "matrix --output": lambda t, b: ["matrix", b["report"], "--output", t],
    "diff --output": lambda t, b: ["diff", b["report"], b["report"], "--output", t],
    "check --save": lambda t, b: ["check", "--expect", b["expect"], "--run", "--save", t],
    "check --junit": lambda t, b: ["check", "--expect", b["expect"], b["report"], "--junit", t],
}


def write_with(writer, target, base, **kwargs):
    proc = memprobe(*WRITERS[writer](str(target), base), **kwargs)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc


def mknod_or_skip(path, kind, major, minor):
    try:
        os.mknod(str(path), kind | 0o644, os.makedev(major, minor))
    except PermissionError as exc:
        pytest.skip("mknod refused: %s" % exc)


# --------------------------------------------------------------------------- files

@ROOT_ONLY
@pytest.mark.parametrize("writer", WRITERS)
def test_a_character_device_is_written_into_not_replaced(tmp_path, base, writer):
    node = tmp_path / "null"            # the same device as /dev/null, in a private place
    mknod_or_skip(node, stat.S_IFCHR, 1, 3)
    write_with(writer, node, base)
    info = os.lstat(str(node))
    assert stat.S_ISCHR(info.st_mode) and info.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(info.st_mode) == 0o644
    assert os.listdir(str(tmp_path)) == ["null"]


@pytest.mark.parametrize("writer", WRITERS)
def test_a_fifo_reader_receives_the_output(tmp_path, base, writer):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(str(fifo))
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    write_with(writer, fifo, base)
    reader.join(30)
    assert received and len(received[0]) > 50
    assert stat.S_ISFIFO(os.lstat(str(fifo)).st_mode)


def test_a_socket_listener_receives_the_report(tmp_path):
    path = str(tmp_path / "out.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    received = []

    def serve():
        conn, _ = server.accept()
        with conn:
            received.append(b"".join(iter(lambda: conn.recv(65536), b"")))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    memprobe("run", "--only", "map_rwx", "-q", "--format", "json", "--output", path, check=True)
    thread.join(30)
    server.close()
    assert json.loads(received[0].decode())["probes"]["map_rwx"]["outcome"] == "allowed"
    assert stat.S_ISSOCK(os.lstat(path).st_mode)


def test_an_open_file_named_through_proc_is_written_into(tmp_path):
    """/dev/stdout and /dev/fd/N are links through /proc to an open file: it gets the report,
    nothing replaces the link (tested through a link of our own to /proc/self/fd/1)."""
    link = tmp_path / "stdout"
    os.symlink("/proc/self/fd/1", str(link))
    out = tmp_path / "captured.yaml"
    with open(str(out), "wb") as stream:
        inode = os.fstat(stream.fileno()).st_ino
        memprobe("run", "--only", "map_rwx", "-q", "--output", str(link), stdout=stream, check=True)
    assert os.readlink(str(link)) == "/proc/self/fd/1"
    assert os.stat(str(out)).st_ino == inode
    assert yaml.safe_load(out.read_text())["probes"]["map_rwx"]["outcome"] == "allowed"


@pytest.mark.parametrize("writer", WRITERS)
def test_a_symlink_is_followed_and_kept(tmp_path, base, writer):
    (tmp_path / "real").mkdir()
    (tmp_path / "links").mkdir()
    target = tmp_path / "real" / "out"
    target.write_text("old\n")
    link = tmp_path / "links" / "out"
    os.symlink("../real/out", str(link))
    write_with(writer, link, base)
    assert os.readlink(str(link)) == "../real/out"
    assert target.read_text() not in ("", "old\n")
    assert os.listdir(str(tmp_path / "real")) == ["out"]
    assert os.listdir(str(tmp_path / "links")) == ["out"]


@pytest.mark.parametrize("writer", WRITERS)
def test_a_directory_is_a_one_line_error(tmp_path, base, writer):
    (tmp_path / "out").mkdir()
    proc = memprobe(*WRITERS[writer](str(tmp_path / "out"), base))
    assert "is a directory" in one_error_line(proc)
    assert os.listdir(str(tmp_path / "out")) == []


@ROOT_ONLY
@pytest.mark.parametrize("writer", WRITERS)
def test_an_existing_file_keeps_its_mode_and_owner(tmp_path, base, writer):
    target = tmp_path / "out"
    target.write_text("old\n")
    os.chmod(str(target), 0o640)
    os.chown(str(target), 1, 2)
    write_with(writer, target, base)
    info = os.stat(str(target))
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o640, 1, 2)
    assert target.read_text() != "old\n"


@ROOT_ONLY
def test_a_user_who_cannot_keep_the_owner_still_replaces_the_file():
    """As uid 65534 over root's file in a shared directory: the owner cannot be kept (chown is
    root's), the mode is, and the write succeeds."""
    shared = tempfile.mkdtemp(prefix="memprobe-output-")   # /tmp: searchable by every user
    try:
        os.chmod(shared, 0o777)
        target = os.path.join(shared, "out")
        with open(target, "w") as stream:
            stream.write("old\n")
        os.chmod(target, 0o664)
        script = ("import os\nfrom probe import _output\n"
                  "os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
                  "_output.write_file(%r, 'new\\n')\n" % target)
        subprocess.run([sys.executable, "-c", script], env=memprobe_env(), cwd=ROOT, timeout=60, check=True)
        info = os.stat(target)
        assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o664, 65534, 65534)
        with open(target) as stream:
            assert stream.read() == "new\n"
    finally:
        shutil.rmtree(shared)


@pytest.mark.parametrize("umask", [0o022, 0o027])
@pytest.mark.parametrize("writer", WRITERS)
def test_a_new_file_gets_0666_less_the_umask_in_new_directories(tmp_path, base, writer, umask):
    target = tmp_path / "new" / "sub" / "out"
    write_with(writer, target, base, preexec_fn=lambda: os.umask(umask))
    assert stat.S_IMODE(os.stat(str(target)).st_mode) == 0o666 & ~umask
    assert os.listdir(str(target.parent)) == ["out"]


@pytest.mark.parametrize("writer", WRITERS)
def test_a_250_character_file_name_works(tmp_path, base, writer):
    target = tmp_path / ("r" * 245 + ".yaml")
    write_with(writer, target, base)
    assert target.stat().st_size > 50
    assert os.listdir(str(tmp_path)) == [target.name]


def test_the_output_extension_chooses_the_format_and_a_contradiction_is_refused(tmp_path, base):
    memprobe("run", "--only", "map_rwx", "-q", "--output", str(tmp_path / "r.json"), check=True)
    assert json.loads((tmp_path / "r.json").read_text())["schema_version"] == 1
    memprobe("run", "--only", "map_rwx", "-q", "--output", str(tmp_path / "r.yml"), "--format", "yaml",
             check=True)
    proc = memprobe("run", "--only", "map_rwx", "--output", str(tmp_path / "x.json"), "--format", "yaml")
    assert "contradicts --output" in one_error_line(proc)
    assert proc.stdout == b"" and not (tmp_path / "x.json").exists()
    memprobe("check", "--expect", base["expect"], "--run", "--save", str(tmp_path / "s.json"), check=True)
    assert json.loads((tmp_path / "s.json").read_text())["schema_version"] == 1


def test_matrix_and_diff_follow_the_output_extension_too(tmp_path, base):
    memprobe("matrix", base["report"], "--output", str(tmp_path / "m.html"), check=True)
    assert (tmp_path / "m.html").read_text().startswith("<!DOCTYPE html>")
    memprobe("matrix", base["report"], "--output", str(tmp_path / "m.csv"), check=True)
    assert (tmp_path / "m.csv").read_text().startswith("host,")
    proc = memprobe("matrix", base["report"], "--output", str(tmp_path / "x.html"), "--format", "csv")
    assert "means html" in one_error_line(proc)
    memprobe("diff", base["report"], base["report"], "--output", str(tmp_path / "d.json"), check=True)
    assert json.loads((tmp_path / "d.json").read_text())["equal"] is True
    proc = memprobe("diff", base["report"], base["report"], "--output", str(tmp_path / "d.yaml"), "-f", "json")
    assert "means yaml" in one_error_line(proc)


def test_a_failed_report_file_still_prints_the_report(tmp_path):
    (tmp_path / "file").write_text("")
    target = str(tmp_path / "file" / "r.yaml")        # ENOTDIR: the parent is a file
    proc = memprobe("run", "--only", "map_rwx", "--output", target, "--junit", str(tmp_path / "j.xml"))
    assert "cannot write: Not a directory" in one_error_line(proc)
    assert yaml.safe_load(proc.stdout)["probes"]["map_rwx"]["outcome"] == "allowed"
    assert (tmp_path / "j.xml").read_text().startswith("<?xml")
    quiet = memprobe("run", "--only", "map_rwx", "-q", "--output", target)
    one_error_line(quiet)
    assert quiet.stdout == b""


def test_check_run_keeps_its_result_when_save_fails(tmp_path, base):
    (tmp_path / "file").write_text("")
    proc = memprobe("check", "--expect", base["expect"], "--run", "--save", str(tmp_path / "file" / "r.yaml"),
                    "--junit", str(tmp_path / "j.xml"))
    one_error_line(proc)
    assert b"1 expectation: 1 hold" in proc.stdout
    assert 'failures="0"' in (tmp_path / "j.xml").read_text()


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
