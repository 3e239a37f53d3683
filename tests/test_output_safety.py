"""Every writer of output files: what is at the path survives, and nothing is lost.

Device nodes, FIFOs and sockets are made inside tmp_path (never the system's own).
"""

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading

import pytest
import yaml

from helpers.output_helpers import ROOT_ONLY, WRITERS, make_base, memprobe, mknod_or_skip, one_error_line, write_with
from conftest import ROOT, memprobe_env


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return make_base(tmp_path_factory)


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
    proc = memprobe(*WRITERS[writer](str(tmp_path / "out"), base), env=base["env"])
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
        script = ("import os\nfrom probe.report import output as _output\n"
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
