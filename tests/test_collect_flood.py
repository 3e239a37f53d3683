"""memprobe matrix cannot be hung or flooded: special files in a directory, a worker killed
by SIGKILL, Ctrl-C to the process group, and reports that invent capability names.

Real FIFOs, device nodes (mknod in a temporary directory), a real socket, real processes
and real signals; inotify (through libc) proves which files were opened.
"""

import ctypes
import ctypes.util
import os
import re
import signal
import socket
import stat
import struct
import subprocess
import sys
import time

import pytest

from probe.report import load as _load
from probe.errors import InputError

from helpers.collect_fixtures import ROOT, real, variant, write  # noqa: F401

IN_OPEN = 0x20
IN_NONBLOCK = os.O_NONBLOCK


def _start_matrix(*args):
    """The real CLI in its own process group (so a test can signal the whole group)."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    # SIGINT at its default even when this test run is a shell's background job (which
    # starts with it ignored), so that a test's Ctrl-C reaches the command.
    return subprocess.Popen([sys.executable, "-m", "probe", "matrix"] + [str(a) for a in args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _finish(proc, timeout=60):
    """(status, stdout, stderr); a run still going after timeout is a hang: kill it, fail."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("memprobe matrix hung for %d s" % timeout)
    return proc.returncode, out, err


def _children(pid, count, timeout=30):
    """The pids of pid's children once there are `count` of them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                kids = [int(k) for k in f.read().split()]
        except OSError:
            kids = []
        if len(kids) >= count:
            return kids
        time.sleep(0.02)
    pytest.fail("matrix did not start %d workers" % count)


def _gone(pids, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(os.path.exists("/proc/%d" % p) for p in pids):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def busy_fleet(real, tmp_path):
    """More reports than the parallel threshold, and a FIFO named first on the command line:
    the worker that opens it waits for a writer, so the run is in progress for as long as
    the test needs."""
    from probe.commands import matrix

    plain = real.doc("plain")
    paths = [write(tmp_path, "r%03d.yaml" % i, variant(plain, hostname="h%03d" % i))
             for i in range(matrix._POOL_MIN_FILES + 8)]
    fifo = tmp_path / "waiting.yaml"
    os.mkfifo(fifo)
    return [str(fifo)] + paths


# --------------------------------------------------------------------------- special files

class _OpenWatch:
    """inotify IN_OPEN on one directory: the names of the entries opened in it."""

    def __init__(self, directory):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self.fd = libc.inotify_init1(IN_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            pytest.skip("inotify is not available: %s" % os.strerror(ctypes.get_errno()))
        if libc.inotify_add_watch(self.fd, os.fsencode(str(directory)), IN_OPEN) < 0:
            pytest.skip("inotify_add_watch: %s" % os.strerror(ctypes.get_errno()))

    def opened(self):
        names = set()
        try:
            while True:
                data = os.read(self.fd, 65536)
                pos = 0
                while pos < len(data):
                    _, mask, _, length = struct.unpack_from("iIII", data, pos)
                    name = data[pos + 16:pos + 16 + length].split(b"\0", 1)[0].decode()
                    if mask & IN_OPEN and name:
                        names.add(name)
                    pos += 16 + length
        except BlockingIOError:
            pass
        os.close(self.fd)
        return names


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod of device nodes needs root (CAP_MKNOD)")
def test_matrix_dir_skips_fifos_devices_and_sockets_without_opening_them(real, tmp_path):
    d = tmp_path / "r"
    d.mkdir()
    write(d, "a.yaml", real.doc("plain"))
    write(d, "b.json", variant(real.doc("plain"), hostname="other"))
    os.mkfifo(d / "fifo.yaml")
    os.mknod(d / "chr.yaml", stat.S_IFCHR | 0o600, os.makedev(1, 5))    # what /dev/zero is
    os.mknod(d / "blk.yml", stat.S_IFBLK | 0o600, os.makedev(7, 200))   # a loop device number
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(d / "sock.json"))
    os.symlink("fifo.yaml", d / "link-to-fifo.yaml")
    os.symlink("chr.yaml", d / "link-to-chr.json")
    special = {"fifo.yaml": "a FIFO", "chr.yaml": "a character device", "blk.yml": "a block device",
               "sock.json": "a socket", "link-to-fifo.yaml": "a FIFO", "link-to-chr.json": "a character device"}
    watch = _OpenWatch(d)
    try:
        status, out, err = _finish(_start_matrix(d))
    finally:
        sock.close()
    opened = watch.opened()
    assert status == 0, err
    assert out.splitlines()[-1].startswith("2 hosts; 6 bad files skipped.")
    for name, kind in special.items():
        assert "memprobe: warning: skipped %s: %s, not a regular file; not opened\n" % (d / name, kind) in err
    assert len(err.splitlines()) == len(special)
    assert {"a.yaml", "b.json"} <= opened  # the watch sees opens ...
    assert not opened & set(special), opened  # ... and none of the special files was opened


def test_loader_refuses_a_fifo_or_device_swapped_in_without_reading_it(tmp_path):
    """The stat() check can race with a rename: the open itself must not block or read."""
    fifo = str(tmp_path / "swapped.yaml")
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # a FIFO with data waiting in it
    os.write(writer, b"schema_version: 1\n")
    signal.alarm(20)  # a blocking open would hang the test: fail it instead
    try:
        with pytest.raises(InputError, match=r"swapped\.yaml: a FIFO, not a regular file"):
            _load.read_bytes(fifo, regular_only=True)
    finally:
        signal.alarm(0)
    assert os.read(writer, 100) == b"schema_version: 1\n"  # nothing was read from it
    os.close(writer)
    if os.geteuid() == 0:
        zero = str(tmp_path / "zero.yaml")
        os.mknod(zero, stat.S_IFCHR | 0o600, os.makedev(1, 5))
        with pytest.raises(InputError, match="a character device"):
            _load.read_bytes(zero, regular_only=True)
    regular = tmp_path / "r.yaml"
    regular.write_bytes(b"schema_version: 1\n")
    assert _load.read_bytes(str(regular), regular_only=True) == b"schema_version: 1\n"


# --------------------------------------------------------------------------- workers and signals

def test_a_worker_killed_by_sigkill_ends_the_run_with_one_line(busy_fleet):
    proc = _start_matrix("--jobs", "2", *busy_fleet)
    try:
        workers = _children(proc.pid, 2)
        time.sleep(0.5)  # every chunk handed out; one worker waits on the FIFO
        os.kill(workers[0], signal.SIGKILL)  # what the OOM killer does
        status, out, err = _finish(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert status == 1 and out == ""
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("memprobe: error: a process reading reports died (SIGKILL")
    assert _gone(workers), "workers left behind"


def test_ctrl_c_on_matrix_prints_no_worker_traceback(busy_fleet):
    proc = _start_matrix("--jobs", "2", *busy_fleet)
    try:
        workers = _children(proc.pid, 2)
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole group
        status, out, err = _finish(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert (status, out, err) == (130, "", "memprobe: interrupted\n")
    assert _gone(workers), "workers left behind"


# --------------------------------------------------------------------------- output size

def _inventive_fleet(real, directory, count, invented=120):
    """Valid reports that each add `invented` capability names of their own."""
    directory.mkdir()
    plain = real.doc("plain")
    for i in range(count):
        doc = variant(plain, hostname="h%03d" % i)
        for k in range(invented):
            doc["summary"]["made_up_%03d_%03d" % (i, k)] = {"state": "works", "text": "x"}
        write(directory, "r%03d.json" % i, doc)
    return sum(os.path.getsize(directory / n) for n in os.listdir(directory))


def test_output_size_is_bounded_by_the_input(real, tmp_path):
    sizes = {}
    for count in (20, 40):
        directory = tmp_path / ("fleet%d" % count)
        input_bytes = _inventive_fleet(real, directory, count)
        status, page, err = _finish(_start_matrix("-f", "html", "--jobs", "1", directory))
        assert status == 0, err
        status, table, _ = _finish(_start_matrix("--jobs", "1", directory))
        assert status == 0
        sizes[count] = len(page.encode()) + len(table.encode())
        assert sizes[count] <= input_bytes, (sizes[count], input_bytes)
        header = table.splitlines()[0]
        assert "made_up" not in page + table and header.count("`") == 2 * len(real.doc("plain")["summary"])
        lines = err.splitlines()
        assert len(lines) == (21 if count > 20 else 20)  # at most 20 warnings, then how many more
        assert re.fullmatch(r"memprobe: warning: .*r000\.json: ignored 120 capabilities this memprobe does "
                            r"not know \(made_up_000_000, made_up_000_001, .*, \.\.\.\)", lines[0])
        if count == 40:
            assert lines[-1] == ("memprobe: warning: ... and 20 more reports with capabilities this "
                                 "memprobe does not know")
    # twice the reports, about twice the output: linear, not quadratic
    assert sizes[40] <= 2.2 * sizes[20], sizes
