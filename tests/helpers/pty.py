"""Run memprobe with stdout and/or stderr on a real pseudo-terminal, as a person would."""

import errno
import os
import select
import subprocess
import sys
import time

from conftest import ROOT, memprobe_env


def run_on_ptys(*args, stdout_tty=True, stderr_tty=True, env=None, cwd=None, timeout=120):
    """(status, stdout text, stderr text, [(seconds since start, stream, text)]); a stream on a
    pty has its CR LF turned back into LF. A run still going after timeout is killed: a failure."""
    ends = {}
    for name, tty in (("out", stdout_tty), ("err", stderr_tty)):
        ends[name] = os.openpty() if tty else os.pipe()
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "probe"] + list(args), stdin=subprocess.PIPE,
                            stdout=ends["out"][1], stderr=ends["err"][1], env=env or memprobe_env(),
                            cwd=cwd or ROOT)
    proc.stdin.close()
    for _, child_end in ends.values():
        os.close(child_end)
    readers = {ends[name][0]: name for name in ends}
    chunks, events = {"out": [], "err": []}, []
    try:
        while readers:
            left = start + timeout - time.monotonic()
            assert left > 0, "memprobe %s still running after %ss" % (" ".join(args), timeout)
            ready, _, _ = select.select(list(readers), [], [], left)
            for fd in ready:
                data = _read(fd)
                if not data:
                    os.close(fd)
                    del readers[fd]
                    continue
                text = data.decode("utf-8", "replace")
                chunks[readers[fd]].append(text)
                events.append((time.monotonic() - start, readers[fd], text))
        status = proc.wait(timeout=max(1, start + timeout - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for fd in readers:
            os.close(fd)
    out, err = "".join(chunks["out"]), "".join(chunks["err"])
    return (status, out.replace("\r\n", "\n") if stdout_tty else out,
            err.replace("\r\n", "\n") if stderr_tty else err, events)


def _read(fd):
    try:
        return os.read(fd, 65536)
    except OSError as exc:
        if exc.errno == errno.EIO:   # Linux: the pty's other end is closed everywhere
            return b""
        raise
