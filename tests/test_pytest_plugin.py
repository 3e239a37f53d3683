"""The pytest plugin, through pytest's own pytester: inner sessions in subprocesses,
on the plain host and under real PR_SET_MDWE and seccomp filters."""

import configparser
import json
import os
import sys

import pytest

import probe
from conftest import CONFINE, ROOT, UNAVAILABLE, memprobe_env, run_cli

pytest_plugins = ["pytester"]

# A test that really flips a page RW -> RX: it fails (or, under a seccomp kill filter,
# kills the session) wherever it runs although the host forbids it.
FLIP = """
import ctypes, mmap, os
import pytest


def flip_rw_to_rx():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    view = (ctypes.c_char * mmap.PAGESIZE).from_buffer(page)
    address = ctypes.addressof(view)
    rc = libc.mprotect(address, mmap.PAGESIZE, mmap.PROT_READ | mmap.PROT_EXEC)
    err = ctypes.get_errno()
    libc.mprotect(address, mmap.PAGESIZE, mmap.PROT_READ | mmap.PROT_WRITE)
    del view
    page.close()
    assert rc == 0, "mprotect RX: " + os.strerror(err)
"""

MARKED = FLIP + """

@pytest.mark.memprobe_requires("wx_flip")
def test_flip():
    flip_rw_to_rx()


@pytest.mark.memprobe_requires("dual_mapping", "nx")
def test_dual():
    pass


@pytest.mark.memprobe_requires(any_of=["wx_flip", "dual_mapping"])
def test_any():
    pass


@pytest.mark.memprobe_requires(any_of=["wx_flip", "rwx_mapping"])
def test_any_none():
    flip_rw_to_rx()


def test_unmarked(memprobe_report):
    assert memprobe_report["schema_version"] == 1
"""

SECOND_MODULE = """
import pytest


@pytest.mark.memprobe_requires("code_repatching")
def test_repatch():
    pass
"""

# Counts how often the engine runs in the inner session: the real function still runs.
COUNTING_CONFTEST = """
import probe.report.collect as cmd_run

calls = []
_collect = cmd_run.collect


def counting(*args, **kwargs):
    calls.append(1)
    return _collect(*args, **kwargs)


cmd_run.collect = counting


def pytest_sessionfinish(session):
    with open("collect-calls.txt", "w") as out:
        out.write(str(len(calls)))
"""

PLUGIN = ["-p", "probe.pytest_plugin", "-p", "no:cacheprovider", "-rs"]


@pytest.fixture(autouse=True)
def inner_env(monkeypatch):
    """Inner sessions load the plugin by -p (a source tree has no entry points) and no other."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("PYTHONPATH", memprobe_env()["PYTHONPATH"])
    monkeypatch.delenv("MEMPROBE_TEST_HANG", raising=False)


def inner(pytester, *args, confine=()):
    """Run pytest with the plugin in a subprocess, under tests/helpers/confine.py when asked."""
    if not confine:
        return pytester.runpytest_subprocess(*(PLUGIN + list(args)), timeout=180)
    cmd = [sys.executable, CONFINE] + list(confine) + ["--", sys.executable, "-m", "pytest",
                                                       "--basetemp=%s" % pytester.path.joinpath("tmp")]
    result = pytester.run(*(cmd + PLUGIN + list(args)), timeout=180)
    if result.ret == UNAVAILABLE:
        pytest.skip(" ".join(result.errlines).strip())
    return result


def skip_reasons(result, pytester):
    """{test name: reason} from the -rs summary, which names FILE:LINE of the first decorator."""
    names = {}
    for path in pytester.path.glob("test_*.py"):
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            if line.startswith("def test_"):
                first = number
                while first > 0 and lines[first - 1].startswith("@"):
                    first -= 1
                names["%s:%d" % (path.name, first + 1)] = line[4:line.index("(")]
    out = {}
    for line in result.outlines:
        if line.startswith("SKIPPED [1] "):
            where, _, reason = line[len("SKIPPED [1] "):].partition(": ")
            out[names.get(where, where)] = reason
    return out


def header(result):
    lines = [line for line in result.outlines if line.startswith("memprobe: ")]
    assert len(lines) == 1, result.outlines
    return lines[0]


def calls(pytester):
    return int(pytester.path.joinpath("collect-calls.txt").read_text())


# --------------------------------------------------------------------------- where it works

def test_plain_host_runs_every_marked_test(pytester):
    pytester.makepyfile(test_marked=MARKED, test_second=SECOND_MODULE)
    pytester.makeconftest(COUNTING_CONFTEST)
    result = inner(pytester)
    result.assert_outcomes(passed=6)
    line = header(result)
    assert line.startswith("memprobe: linux/") and "(probed in " in line
    assert "works: rwx_mapping, wx_flip, rwx_flip, dual_mapping, code_repatching" in line
    assert "blocked" not in line
    assert calls(pytester) == 1


# --------------------------------------------------------------------------- under real confinement

CONFINED = [
    (["--mdwe"], "[mdwe]", "mdwe (confirmed)"),
    (["--seccomp", "errno"], "[seccomp]", "seccomp (likely)"),
    (["--seccomp", "kill"], "[seccomp]", "seccomp (confirmed)"),
]


@pytest.mark.parametrize("confine, tag, blocked_by", CONFINED, ids=["mdwe", "seccomp-errno", "seccomp-kill"])
def test_confined_host_skips_with_the_mechanism(pytester, confine, tag, blocked_by):
    pytester.makepyfile(test_marked=MARKED, test_second=SECOND_MODULE)
    pytester.makeconftest(COUNTING_CONFTEST)
    saved = pytester.path.joinpath("saved.json")
    result = inner(pytester, "--memprobe-save", str(saved), confine=confine)
    result.assert_outcomes(passed=3, skipped=3)
    mechanism = blocked_by.split()[0]
    assert skip_reasons(result, pytester) == {
        "test_flip": "wx_flip blocked by %s" % blocked_by,
        "test_any_none": "none of wx_flip, rwx_mapping works: wx_flip blocked by %s; "
                             "rwx_mapping blocked by %s" % (blocked_by, blocked_by),
        "test_repatch": "code_repatching blocked by %s" % blocked_by,
    }
    line = header(result)
    assert tag in line
    assert line.endswith("works: dual_mapping; blocked: rwx_mapping ({0}), wx_flip ({0}), "
                         "rwx_flip ({0}), code_repatching ({0})".format(mechanism))
    assert calls(pytester) == 1           # two modules, four marked tests, one probe run
    report = probe.load(saved)            # --memprobe-save kept what this session probed
    assert report["strategies"]["wx_flip"]["verdict"] == "blocked"
    if confine == ["--mdwe"]:
        assert report["process"]["mdwe"] == 1
    else:
        assert report["process"]["seccomp_mode"] == 2


# --------------------------------------------------------------------------- saved reports

def test_saved_report_is_used_instead_of_probing(pytester, reports):
    mdwe = reports.path("mdwe")           # made under real PR_SET_MDWE
    pytester.makepyfile(test_marked=MARKED)
    pytester.makeconftest(COUNTING_CONFTEST)
    result = inner(pytester, "--memprobe-report", mdwe)
    # This session is not confined: test_flip would pass here, so its skip comes from the report.
    result.assert_outcomes(passed=3, skipped=2)
    assert skip_reasons(result, pytester)["test_flip"] == "wx_flip blocked by mdwe (confirmed)"
    assert "[mdwe] (report %s)" % mdwe in header(result)
    assert calls(pytester) == 0


def test_unknown_answer_says_so(pytester, tmp_path):
    path = str(tmp_path / "hang.json")
    proc = run_cli("run", "--only", "flip_rw_rx", "map_rwx", "--timeout", "0.5", "--format", "json",
                   "--output", path, "--quiet", env=memprobe_env(MEMPROBE_TEST_HANG="flip_rw_rx"))
    assert proc.returncode == 0, proc.stderr
    pytester.makepyfile(test_marked=MARKED)
    result = inner(pytester, "--memprobe-report", path)
    reasons = skip_reasons(result, pytester)
    assert reasons["test_flip"].startswith(
        "wx_flip unknown: memprobe could not decide on this host (flip_rw_rx timeout: ")
    # dual_mapping was not probed at all: unknown too, and the skip says so
    assert reasons["test_dual"].startswith("dual_mapping unknown: memprobe could not decide")
    assert reasons["test_dual"] == ("dual_mapping unknown: memprobe could not decide on this host (not run: "
                                    "dual_map_memfd, dual_map_shm, dual_map_file); "
                                    "nx unknown: the report does not say (not run: exec_rw)")
    assert "unknown: wx_flip" in header(result)


def test_unreadable_report_is_a_usage_error(pytester, tmp_path):
    pytester.makepyfile(test_marked=MARKED)
    missing = tmp_path / "missing.yaml"
    result = inner(pytester, "--memprobe-report", str(missing))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --memprobe-report: %s: cannot read: *" % missing])


# --------------------------------------------------------------------------- usage errors

@pytest.mark.parametrize("marker, words", [
    ('memprobe_requires("wx_flp")', "unknown strategy or capability 'wx_flp' (known: rwx_mapping, "),
    ('memprobe_requires(any_of=["dual_mapping", "dual_maping"])', "unknown strategy or capability 'dual_maping'"),
    ("memprobe_requires()", "needs at least one strategy or capability"),
    ('memprobe_requires(anyof=["wx_flip"])', "takes names and any_of=[...], not anyof"),
    ('memprobe_requires(any_of="wx_flip")', "any_of=...) takes a non-empty list of names"),
    ("memprobe_requires(3)", "expected strategy or capability names, got 3"),
])
def test_bad_marker_is_a_usage_error(pytester, marker, words):
    pytester.makepyfile(test_typo="import pytest\n\n@pytest.mark.%s\ndef test_a():\n    pass\n" % marker)
    pytester.makeconftest(COUNTING_CONFTEST)
    result = inner(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.startswith("ERROR: ")]
    assert len(errors) == 1 and errors[0].startswith("ERROR: test_typo.py::test_a: "), result.errlines
    assert words in errors[0]
    assert calls(pytester) == 0           # refused before probing


# --------------------------------------------------------------------------- cost

def test_unmarked_project_pays_nothing(pytester):
    pytester.makepyfile(test_plain="""
import sys


def test_nothing_of_memprobe_was_loaded():
    for name in ("probe.pytest_plugin.host", "probe.report.collect", "probe.engine.runner", "probe.report.load", "yaml", "psutil"):
        assert name not in sys.modules, name
""")
    result = inner(pytester)
    result.assert_outcomes(passed=1)
    assert not [line for line in result.outlines if line.startswith("memprobe: ")]


# --------------------------------------------------------------------------- installation

def test_setup_cfg_declares_the_pytest11_entry_point():
    config = configparser.ConfigParser()
    config.read(os.path.join(ROOT, "setup.cfg"))
    groups = config["options.entry_points"]
    assert "memprobe = probe.pytest_plugin" in groups["pytest11"].strip().splitlines()


def test_installed_memprobe_is_enough(pytester, monkeypatch):
    from importlib import metadata

    found = [ep for ep in _entry_points(metadata) if ep.value == "probe.pytest_plugin"]
    if not found:
        pytest.skip("memprobe is not installed here (run from a source tree): no entry point to load")
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    pytester.makepyfile(test_marked=MARKED)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=180)
    result.assert_outcomes(passed=5)
    assert "works: rwx_mapping, wx_flip" in header(result)


def _entry_points(metadata):
    eps = metadata.entry_points()
    if hasattr(eps, "select"):
        return list(eps.select(group="pytest11"))
    return list(eps.get("pytest11", ()))      # Python 3.9


def test_saved_report_round_trips_as_yaml(pytester, reports):
    pytester.makepyfile(test_marked=MARKED)
    saved = pytester.path.joinpath("copy.yaml")
    result = inner(pytester, "--memprobe-report", reports.path("seccomp"), "--memprobe-save", str(saved))
    result.assert_outcomes(passed=3, skipped=2)
    assert saved.read_text().startswith("schema_version: 1\n")
    assert probe.load(saved) == json.loads(open(reports.path("seccomp")).read())
