"""The parent side of a run under stress: an isolated start, a paused parent, signals,
running out of descriptors or processes. Real processes, real signals, real limits."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, memprobe_env

SUBREAPER = os.path.join(ROOT, "tests", "helpers", "subreaper.py")
# The parent memprobe, started so that nothing in its working directory can be imported.
PARENT = [sys.executable, "-I", "-c",
          "import sys; sys.path.insert(0, sys.argv.pop(1)); from probe.cli import main; "
          "sys.exit(main())", ROOT]
# Four probes that run on any host, in registry order; the last one is made to hang.
FOUR = ["flip_rw_rx", "map_rwx", "dual_map_memfd", "exec_heap"]


def under_subreaper(tmp_path, args, env, *options):
    """Run the memprobe CLI below tests/helpers/subreaper.py: (its JSON, stdout, stderr)."""
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    cmd = [sys.executable, SUBREAPER, "--out", str(out), "--err", str(err)] + list(options) + \
        ["--"] + PARENT + list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(tmp_path),
                          timeout=180)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), out.read_text(), err.read_text()


def outcomes(report):
    return {k: v["outcome"] for k, v in report["probes"].items()}


# --- no code from the current directory --------------------------------------------------------

HOSTILE = "open(%r, 'a').write(__name__ + '\\n')\n"


def hostile_directory(tmp_path):
    work, marker = tmp_path / "work", tmp_path / "marker"
    (work / "probe").mkdir(parents=True)
    for name in ("probe/__init__.py", "probe/__main__.py", "argparse.py", "json.py", "signal.py"):
        (work / name).write_text(HOSTILE % str(marker))
    return work, marker


@pytest.mark.parametrize("options, extra_env", [
    (["--isolation", "spawn"], {}),
    (["--pax-defaults"], {"MEMPROBE_TEST_FORCE_UNMARKED_COPY": "1"}),
    (["--pax-defaults", "--isolation", "spawn"], {"MEMPROBE_TEST_FORCE_UNMARKED_COPY": "1"}),
    # A wrapper before the interpreter, as the qemu-user rig's MEMPROBE_INTERPRETER has.
    (["--isolation", "spawn"], {"MEMPROBE_INTERPRETER": "WRAPPER"}),
], ids=["spawn", "pax-defaults", "pax-defaults-spawn", "spawn-through-a-wrapper"])
def test_child_interpreters_ignore_the_current_directory(tmp_path, tmp_path_factory, reports,
                                                         options, extra_env):
    work, marker = hostile_directory(tmp_path)
    if extra_env.get("MEMPROBE_INTERPRETER") == "WRAPPER":
        extra_env = {"MEMPROBE_INTERPRETER": _wrapper(tmp_path_factory.mktemp("wrapper"))}
    env = memprobe_env(TMPDIR=str(tmp_path), **extra_env)
    env["PYTHONPATH"] = str(work)      # an isolated child ignores PYTHON* variables too
    proc = subprocess.run(PARENT + ["run", "--format", "json", "--output", "-"] + options,
                          capture_output=True, text=True, env=env, cwd=str(work), timeout=180)
    assert not marker.exists(), marker.read_text()
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert outcomes(report) == outcomes(reports.get("plain"))
    assert sorted(os.listdir(tmp_path)) == ["work"]     # the interpreter copy is gone


def _wrapper(directory):
    """A program that runs its arguments, as `env` or qemu's wrapper does (written in Python:
    the Debian chroot suites have no coreutils)."""
    path = directory / "wrap.py"
    path.write_text("import os, sys\nos.execv(sys.argv[1], sys.argv[1:])\n")
    return "%s -I %s %s" % (sys.executable, path, sys.executable)


# --- a stopped parent ---------------------------------------------------------------------------

@pytest.mark.parametrize("isolation, timeout, pause", [("fork", "1", "2.5"), ("spawn", "2", "3.5")])
def test_a_paused_parent_does_not_turn_finished_probes_into_timeouts(tmp_path, reports, isolation,
                                                                      timeout, pause):
    # A spawned worker's interpreter start counts against its timeout: more room on a busy host.
    env = memprobe_env(MEMPROBE_TEST_HANG="exec_heap")
    got, out, err = under_subreaper(
        tmp_path, ["run", "--timeout", timeout, "--jobs", "4", "--isolation", isolation,
                   "--format", "json", "--output", "-"], env,
        "--when-descendants", "3", "--pause", pause)
    assert got["acted"] and got["rc"] == 0, err
    report = json.loads(out)
    plain = outcomes(reports.get("plain"))
    expected = dict(plain, exec_heap="timeout")
    assert outcomes(report) == expected
    assert report["probes"]["exec_heap"]["step"] == "test_hang"    # judged, and still killed
    assert report["summary"]["nx"]["state"] == reports.get("plain")["summary"]["nx"]["state"]
    assert got["leftovers"] == []


# --- signals to the parent alone ----------------------------------------------------------------

def _tmp_entries(tmp):
    return sorted(os.listdir(tmp))


@pytest.mark.parametrize("isolation", ["fork", "spawn"])
@pytest.mark.parametrize("signame", ["TERM", "HUP", "INT"])
def test_a_signal_kills_every_child_and_removes_temporary_files(tmp_path, signame, isolation):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = memprobe_env(TMPDIR=str(tmp), MEMPROBE_TEST_HANG="exec_heap")
    got, out, err = under_subreaper(
        tmp_path, ["run", "--only"] + FOUR + ["--timeout", "60", "--isolation", isolation,
                                              "--output", str(tmp_path / "r.yaml")], env,
        "--when-descendants", "1", "--signal", signame)
    signum = getattr(signal, "SIG" + signame)
    assert got["acted"]
    assert got["rc"] == 128 + signum, err
    assert err.strip().splitlines() == ["memprobe: stopped by SIG%s" % signame]
    assert got["leftovers"] == []
    assert _tmp_entries(tmp) == []
    assert not (tmp_path / "r.yaml").exists()


@pytest.mark.parametrize("signame", ["TERM", "HUP", "INT"])
def test_pax_defaults_forwards_the_signal_and_removes_the_copy(tmp_path, signame):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = memprobe_env(TMPDIR=str(tmp), MEMPROBE_TEST_HANG="exec_heap",
                       MEMPROBE_TEST_FORCE_UNMARKED_COPY="1")
    # 2 descendants: the inner run from the copy, and at least one probe of its own.
    got, out, err = under_subreaper(
        tmp_path, ["run", "--pax-defaults", "--only"] + FOUR + ["--timeout", "60",
                                                                  "--output", "-"], env,
        "--when-descendants", "2", "--signal", signame)
    signum = getattr(signal, "SIG" + signame)
    assert got["acted"]
    assert got["rc"] == 128 + signum, err
    assert got["leftovers"] == []
    assert _tmp_entries(tmp) == []          # no interpreter copy, no run directory
    assert out == ""


def test_pax_defaults_reports_an_inner_run_killed_by_a_signal_as_a_shell_does(tmp_path):
    from helpers.subreaper import children
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = memprobe_env(TMPDIR=str(tmp), MEMPROBE_TEST_FORCE_UNMARKED_COPY="1")
    proc = subprocess.Popen(PARENT + ["run", "--pax-defaults", "--output", "-"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            cwd=str(tmp_path))
    end, inner = time.monotonic() + 60, []
    while not inner and time.monotonic() < end:       # the copy's check has no children
        inner = [p for p in children(proc.pid) if children(p)]
        time.sleep(0.001)
    os.kill(inner[0], signal.SIGKILL)      # the inner run, from outside
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGKILL, err
    assert out == b""
    assert _tmp_entries(tmp) == [] or all(e.startswith("memprobe-run-") for e in _tmp_entries(tmp))


# --- partial failure ----------------------------------------------------------------------------

def test_no_descriptor_for_a_pipe_ends_the_run_with_one_line(tmp_path):
    # Each running child costs the parent two descriptors (its pipe's read end, its pidfd):
    # the limit lets the first children start and the pipe() of a later one fail.
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = memprobe_env(TMPDIR=str(tmp), MEMPROBE_TEST_HANG="flip_rw_rx")
    got, out, err = under_subreaper(
        tmp_path, ["run", "--only"] + FOUR + ["--jobs", "4", "--timeout", "60", "--output", "-"],
        env, "--nofile", str(_nofile_for_two_children(tmp_path)))
    assert got["rc"] == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Too many open files" in lines[0], err
    assert lines[0].startswith("memprobe: error: cannot start a process for ")
    assert got["leftovers"] == []
    assert out == "" and _tmp_entries(tmp) == []


def _nofile_for_two_children(tmp_path):
    """The descriptors open when the first probe is forked (its pipe included), plus one
    more child's pipe end and pidfd, plus one: too few for a third pipe."""
    code = ("import os, sys; sys.path.insert(0, %r)\n"
            "def spy():\n"
            "    os.write(1, str(len(os.listdir('/proc/self/fd')) - 1).encode()); os._exit(0)\n"
            "os.fork = spy\n"
            "from probe.cli import main\n"
            "main(['run', '--only', 'flip_rw_rx', '--output', '-'])\n" % ROOT)
    proc = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, env=memprobe_env(TMPDIR=str(tmp_path)))
    return int(proc.stdout) + 3


def test_no_process_left_for_a_fork_ends_the_run_with_one_line(tmp_path):
    # RLIMIT_NPROC binds a non-root uid only: load as root, then become an otherwise unused
    # uid allowed 3 processes (itself and two children), so the third fork fails with EAGAIN.
    uid = 61000 + os.getpid() % 4000
    if os.geteuid() != 0:
        pytest.skip("changing to another uid needs root")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    os.chmod(tmp, 0o777)
    script = ("import os, resource, sys; sys.path.insert(0, %r)\n"
              "from probe import cli\nfrom probe.report import collect as _cmd_run\n"
              "cli._build_parser('run').parse_args(['run'])\n"     # what loads lazily, as root
              "_cmd_run.collect(only=['map_rx'])\n"
              "os.setgroups([]); os.setgid(%d); os.setuid(%d)\n"
              "resource.setrlimit(resource.RLIMIT_NPROC, (3, 3))\n"
              "sys.exit(cli.main(sys.argv[1:]))\n" % (ROOT, uid, uid))
    env = memprobe_env(TMPDIR=str(tmp), MEMPROBE_TEST_HANG="flip_rw_rx")
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    proc = subprocess.run([sys.executable, SUBREAPER, "--out", str(out), "--err", str(err), "--",
                           sys.executable, "-I", "-c", script, "run", "--only"] + FOUR +
                          ["--jobs", "4", "--timeout", "60", "--output", "-"],
                          capture_output=True, text=True, env=env, cwd="/", timeout=120)
    got = json.loads(proc.stdout)
    lines = err.read_text().strip().splitlines()
    assert got["rc"] == 1, lines
    assert len(lines) == 1 and "Resource temporarily unavailable" in lines[0], lines
    assert got["leftovers"] == []
    assert out.read_text() == "" and _tmp_entries(tmp) == []


def test_out_of_memory_in_the_parent_ends_the_run_with_one_line(tmp_path):
    # Everything loaded, then RLIMIT_AS at the size the process has: a later allocation of
    # fresh memory in the parent fails, before, between or after the forks depending on the
    # Python version (the in-process test below makes it fail while children run).
    script = ("import os, resource, sys; sys.path.insert(0, %r)\n"
              "from probe import cli, policy as _policy\nimport probe.commands.run\nfrom probe.report import collect as _cmd_run, build as _report\n"
              "from probe.engine import runner as _runner\nfrom probe.attribution import attribute as _attribution\n"
              "_runner._preload()\n"
              "with open('/proc/self/status') as f:\n"
              "    size = [int(l.split()[1]) * 1024 for l in f if l.startswith('VmSize')][0]\n"
              "resource.setrlimit(resource.RLIMIT_AS, (size, size))\n"
              "sys.exit(cli.main(sys.argv[1:]))\n" % ROOT)
    env = memprobe_env(TMPDIR=str(tmp_path), MEMPROBE_TEST_HANG="flip_rw_rx")
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    proc = subprocess.run([sys.executable, SUBREAPER, "--out", str(out), "--err", str(err), "--",
                           sys.executable, "-I", "-c", script, "run", "--only"] + FOUR +
                          ["--jobs", "4", "--timeout", "2", "--output", "-"],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=120)
    got = json.loads(proc.stdout)
    assert got["rc"] == 1, err.read_text()
    assert err.read_text().strip().splitlines() == ["memprobe: error: out of memory"]
    assert got["leftovers"] == []
    assert sorted(os.listdir(tmp_path)) == ["stderr", "stdout"]


def test_memory_error_in_the_parent_kills_the_children_it_started():
    from probe.engine import runner as _runner
    started = []
    real_fork = os.fork

    def counting_fork():
        pid = real_fork()
        if pid:
            started.append(pid)
        return pid

    def out_of_memory(task, raw):
        [None] * sys.maxsize        # a real MemoryError, on 32-bit builds too

    os.fork = counting_fork
    os.environ["MEMPROBE_TEST_HANG"] = "flip_rw_rx"
    try:
        with pytest.raises(MemoryError):
            _runner.run_tasks(["flip_rw_rx", "map_rwx", "exec_heap"], _runner.detect_arch(),
                              "fork", 60, 3, out_of_memory)
    finally:
        os.fork = real_fork
        del os.environ["MEMPROBE_TEST_HANG"]
    assert len(started) == 3
    for pid in started:          # reaped: not even a zombie is left
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        assert not os.path.exists("/proc/%d" % pid) or _not_our_child(pid)


def _not_our_child(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[1]) != os.getpid()


# --- no sibling descriptors ---------------------------------------------------------------------

@pytest.mark.parametrize("isolation", ["fork", "spawn"])
def test_a_probe_child_holds_only_its_own_descriptors(tmp_path, isolation):
    # The hanging probe starts last of four at once, while the parent holds the pipes and
    # pidfds of the three before it.
    env = memprobe_env(MEMPROBE_TEST_HANG="exec_heap")
    proc = subprocess.Popen(PARENT + ["run", "--only"] + FOUR + [
        "--jobs", "4", "--timeout", "60", "--isolation", isolation, "--output", "-"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env,
        cwd=str(tmp_path))
    try:
        child = _wait_for_hanging_child(proc.pid)
        links = {int(fd): os.readlink("/proc/%d/fd/%s" % (child, fd))
                 for fd in os.listdir("/proc/%d/fd" % child)}
        # Pipes, pidfds and other non-file descriptors count; a library's open file does not
        # (libffi with static trampolines keeps its own .so open to map them).
        own = [fd for fd in links if fd > 2 and not links[fd].startswith("/")]
        with open("/proc/%d/fdinfo/%d" % (child, own[0])) as f:
            flags = int(f.read().split("flags:")[1].split()[0], 8)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert len(own) == 1 and links[own[0]].startswith("pipe:"), links
    assert flags & os.O_ACCMODE == os.O_WRONLY        # its own result pipe's write end
    assert not any("pidfd" in link for link in links.values()), links


def _wait_for_hanging_child(pid):
    """The hanging probe: the one child left once the other three have finished."""
    from helpers.subreaper import children
    end, last, since = time.monotonic() + 60, None, time.monotonic()
    while time.monotonic() < end:
        kids = children(pid)
        if kids != last:
            last, since = kids, time.monotonic()
        elif len(kids) == 1 and time.monotonic() - since > 0.3:
            return kids[0]
        time.sleep(0.01)
    raise AssertionError("no hanging child appeared")


# --- --timeout bounds ---------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["1e10", "86401", "1e400", "nan", "0"])
def test_a_timeout_beyond_the_maximum_is_a_usage_error(value):
    proc = subprocess.run(PARENT + ["run", "--only", "map_rx", "--output", "-", "--timeout", value],
                          capture_output=True, text=True, env=memprobe_env(), timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "memprobe: error: --timeout must be a positive number of seconds, at most 86400"]


def test_the_longest_timeout_runs():
    proc = subprocess.run(PARENT + ["run", "--only", "map_rx", "--format", "json", "--output", "-",
                                    "--timeout", "86400"],
                          capture_output=True, text=True, env=memprobe_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["probes"]["map_rx"]["outcome"] == "allowed"
