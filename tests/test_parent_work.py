"""The run's parent does its own work (policy detection, loading the reporting code)
while its children run, and cleans up after them without shutil. Real children, real
files."""

import os
import subprocess
import sys
import time

import pytest

from probe.engine import runner, tmpfiles
from probe.engine.worker import HANG_ENV
from conftest import memprobe_env

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the children are found through /proc/PID/stat")


def _children_of_this_process():
    """PIDs whose parent is this process, read from /proc (no psutil in every suite)."""
    found = []
    for name in os.listdir("/proc"):
        try:
            with open("/proc/%s/stat" % name) as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if name.isdigit() and int(fields[1]) == os.getpid():
            found.append(int(name))
    return found


def test_meanwhile_runs_once_while_the_first_children_run(monkeypatch):
    monkeypatch.setenv(HANG_ENV, "map_rx")   # this child hangs until its deadline
    calls, ended = [], {}

    def meanwhile():
        calls.append(time.monotonic())

    def done(task, raw):
        ended[task] = (time.monotonic(), raw["timed_out"])

    runner.run_tasks(["map_rx", "map_rwx"], runner.detect_arch(), "fork", 1.0, jobs=2,
                     done=done, meanwhile=meanwhile)
    assert len(calls) == 1
    assert ended["map_rx"][1] is True                    # it really hung...
    assert calls[0] < ended["map_rx"][0] - 0.5           # ...and meanwhile ran long before its end


def test_meanwhile_runs_even_with_nothing_to_run():
    calls = []
    assert runner.run_tasks([], None, meanwhile=lambda: calls.append(1)) == {}
    assert calls == [1]


@linux_only
def test_a_failing_meanwhile_ends_the_children_and_their_directory(monkeypatch, tmp_path):
    import tempfile   # loaded by pytest: the run's directory goes where tempfile says
    monkeypatch.setenv(HANG_ENV, "map_rx")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def meanwhile():
        assert _children_of_this_process()   # the hanging child is there now...
        assert [n for n in os.listdir(str(tmp_path)) if n.startswith("memprobe-run-")]  # ...and its directory
        raise RuntimeError("detection failed")

    with pytest.raises(RuntimeError, match="detection failed"):
        runner.run_tasks(["map_rx"], runner.detect_arch(), "fork", 60.0, meanwhile=meanwhile)
    assert _children_of_this_process() == []
    assert os.listdir(str(tmp_path)) == []               # the run's directory is gone


@pytest.mark.parametrize("flip_outcome", ["allowed", "denied", None])
def test_measure_flip_calls_meanwhile_once(flip_outcome):
    results = {} if flip_outcome is None else {"flip_rw_rx": {"outcome": flip_outcome}}
    calls = []
    got = runner.measure_flip(runner.detect_arch(), results, "fork", 10.0, lambda: calls.append(1))
    assert calls == [1]
    if flip_outcome == "allowed":   # this host flips (the plain-host verdicts say so)
        assert got["outcome"] == "measured" and got["median_ns"] > 0
    else:
        assert got["outcome"] == "skipped" and got["median_ns"] is None


def test_remove_tree_removes_what_children_leave_but_follows_no_link(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    run_dir = tmp_path / "run"
    (run_dir / "sub" / "deeper").mkdir(parents=True)
    (run_dir / "file").write_text("x")
    (run_dir / "sub" / "deeper" / "file").write_text("x")
    os.symlink(str(outside), str(run_dir / "sub" / "link-to-dir"))
    os.symlink(str(outside / "keep"), str(run_dir / "link-to-file"))
    os.symlink("nowhere", str(run_dir / "dangling"))
    tmpfiles.remove_tree(str(run_dir))
    assert not os.path.lexists(str(run_dir))
    assert (outside / "keep").read_text() == "x"


def test_remove_tree_of_a_missing_directory_is_quiet(tmp_path):
    tmpfiles.remove_tree(str(tmp_path / "never-made"))


def test_default_tmpdir_follows_tmpdir_changes(monkeypatch, tmp_path):
    """Found once per set of candidates: a changed TMPDIR is looked at anew."""
    monkeypatch.delitem(sys.modules, "tempfile", raising=False)   # our own search, not tempfile's
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    monkeypatch.setenv("TMPDIR", str(first))
    assert tmpfiles.default_tmpdir() == str(first)
    monkeypatch.setenv("TMPDIR", str(second))
    assert tmpfiles.default_tmpdir() == str(second)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "missing"))
    assert tmpfiles.default_tmpdir() != str(tmp_path / "missing")


@pytest.mark.parametrize("columns, expected_width", [("60", 58), ("0", 78), ("junk", 78), ("-5", 78)])
def test_help_width_is_the_one_shutil_gives(monkeypatch, columns, expected_width):
    """`run`'s parser sizes its help as argparse would with shutil (which a run no longer
    imports): $COLUMNS when it is a positive number, else the terminal, else 80; minus 2."""
    import shutil
    from probe import cli
    monkeypatch.setenv("COLUMNS", columns)
    monkeypatch.setattr(sys, "__stdout__", None)   # no terminal: shutil's fallback
    assert shutil.get_terminal_size().columns - 2 == expected_width
    formatter = cli._Formatter("memprobe")
    assert formatter._width == expected_width


# Times the flip cost with a `meanwhile` that says whether the measuring child existed
# while it ran; argv[1]: the CPUs to keep ("one" or "all").
_FLIP_SCRIPT = """
import os, sys
from probe.engine import runner
if sys.argv[1] == "one":
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
seen = []
def meanwhile():
    mine = [n for n in os.listdir("/proc") if n.isdigit() and
            open("/proc/%s/stat" % n).read().rsplit(")", 1)[1].split()[1] == str(os.getpid())]
    seen.append(bool(mine))
got = runner.measure_flip(runner.detect_arch(), {"flip_rw_rx": {"outcome": "allowed"}}, "fork", 10.0, meanwhile)
print(got["outcome"], seen)
"""


@linux_only
@pytest.mark.parametrize("cpus", ["one", "all"])
def test_flip_timing_shares_no_cpu_with_the_parents_work(cpus):
    """On one CPU the parent's work is done before the measuring child starts (it would be
    timed as the child's); with another CPU free it is done while the child runs."""
    if cpus == "all" and len(os.sched_getaffinity(0)) < 2:
        pytest.skip("this process may use one CPU only")
    proc = subprocess.run([sys.executable, "-c", _FLIP_SCRIPT, cpus], capture_output=True, text=True,
                          env=memprobe_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split(None, 1) == ["measured", "[%s]\n" % (cpus == "all")]
