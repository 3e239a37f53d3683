"""Run a command as a child subreaper, act on it once it has children, report what survives.

    python tests/helpers/subreaper.py [options] --out FILE --err FILE -- CMD...

Options: --when-descendants N (wait until CMD has N descendants), then --pause S (SIGSTOP
CMD alone for S seconds, then SIGCONT) and/or --signal NAME (send it to CMD alone).
--nofile N, --nproc N and --uid U apply limits and a uid to CMD before exec.
Prints JSON: CMD's exit code, the descendants seen before acting, and every process still
alive (or unreaped) below this one once CMD has exited: orphans of CMD are re-parented
here, so none can escape the count.
"""

import argparse
import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def children(pid):
    out = []
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out += [int(p) for p in f.read().split()]
        except OSError:
            pass
    return out


def descendants(pid):
    found, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        found += kids
        todo += kids
    return found


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def preexec(opts):
    def apply():
        if opts.signal:
            # A shell's background job starts with SIGINT and SIGQUIT ignored, and memprobe
            # leaves a stop signal ignored at its start ignored (as nohup expects): the one
            # under test starts at its default, however this test run was started.
            signal.signal(getattr(signal, "SIG" + opts.signal), signal.SIG_DFL)
        if opts.nofile:
            resource.setrlimit(resource.RLIMIT_NOFILE, (opts.nofile, opts.nofile))
        if opts.uid is not None:
            os.setgroups([])
            os.setgid(opts.uid)
            os.setuid(opts.uid)
        if opts.nproc:
            resource.setrlimit(resource.RLIMIT_NPROC, (opts.nproc, opts.nproc))
    return apply


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--when-descendants", type=int, default=0)
    parser.add_argument("--pause", type=float)
    parser.add_argument("--signal")
    parser.add_argument("--nofile", type=int)
    parser.add_argument("--nproc", type=int)
    parser.add_argument("--uid", type=int)
    parser.add_argument("--out", required=True)
    parser.add_argument("--err", required=True)
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    opts = parser.parse_args()
    cmd = opts.cmd[1:] if opts.cmd[:1] == ["--"] else opts.cmd
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed")
    with open(opts.out, "wb") as out, open(opts.err, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                preexec_fn=preexec(opts))
    seen = []
    end = time.monotonic() + 60
    while opts.when_descendants and proc.poll() is None and time.monotonic() < end:
        seen = descendants(proc.pid)
        if len(seen) >= opts.when_descendants:
            break
        time.sleep(0.001)
    acted = proc.poll() is None
    if acted and opts.pause:
        os.kill(proc.pid, signal.SIGSTOP)
        time.sleep(opts.pause)
        os.kill(proc.pid, signal.SIGCONT)
    if acted and opts.signal:
        os.kill(proc.pid, getattr(signal, "SIG" + opts.signal))
    rc = proc.wait(timeout=120)
    time.sleep(0.2)     # an orphan needs a moment to be re-parented here
    left = [{"pid": p, "cmdline": cmdline(p)} for p in descendants(os.getpid())]
    for p in left:
        try:
            os.kill(p["pid"], signal.SIGKILL)
        except OSError:
            pass
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
    json.dump({"rc": rc, "acted": acted, "seen": [cmdline(p) or str(p) for p in seen],
               "leftovers": left}, sys.stdout)


if __name__ == "__main__":
    main()
