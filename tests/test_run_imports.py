"""What a plain `memprobe run` loads.

A run pays for every module it imports (start-up is most of its cost), and every forked
probe child for the at-fork handlers of those loaded when it was forked; so on Linux it
must not import psutil (only the BSDs read memory maps through it), nor any collector
command, nor subprocess (a fork run starts no other program), nor PyYAML, YAML run or
JSON run: the report's YAML comes from memprobe's own emitter (probe.report.yaml_emit).
"""

import os
import subprocess
import sys

import pytest

from probe import cli
from conftest import ROOT, memprobe_env

# Runs the CLI in this interpreter, then prints on stdout every module it loaded, and
# on a second line those loaded when it forked its first child.
SCRIPT = ("import os, sys\n"
          "at_fork = []\n"
          "real_fork = os.fork\n"
          "def fork():\n"
          "    if not at_fork:\n"
          "        at_fork.append(sorted(sys.modules))\n"
          "    return real_fork()\n"
          "os.fork = fork\n"
          "from probe import cli\n"
          "code = cli.main(sys.argv[1:])\n"
          "sys.stdout.write(' '.join(sorted(sys.modules)) + '\\n')\n"
          "sys.stdout.write(' '.join(at_fork[0] if at_fork else []) + '\\n')\n"
          "sys.exit(code)\n")

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="psutil is a run's dependency on the BSDs only")


def _modules_of_run(tmp_path, *args):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, "run", "--quiet"] + list(args),
                          capture_output=True, text=True, env=memprobe_env(), cwd=str(tmp_path),
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    at_exit, at_fork = proc.stdout.split("\n")[:2]
    return set(at_exit.split()), set(at_fork.split())


def _pyyaml_modules(modules):
    """PyYAML's modules among `modules` (its package and its C extension)."""
    return {name for name in modules if name.split(".")[0] in ("yaml", "_yaml")}


def _collector_modules():
    return {module for name, (module, _) in cli.COMMANDS.items() if name not in ("run", "_worker")}


@linux_only
def test_plain_run_imports_neither_psutil_nor_collectors(tmp_path):
    out = tmp_path / "r.yaml"
    modules, at_fork = _modules_of_run(tmp_path, "--output", str(out))
    assert "probe.engine.runner" in modules and "probe.report.yaml_emit" in modules   # it ran, wrote YAML
    assert out.read_text().startswith("schema_version: 1\n")
    assert not _pyyaml_modules(modules), _pyyaml_modules(modules)
    assert "psutil" not in modules
    assert "subprocess" not in modules
    assert not modules & _collector_modules(), modules & _collector_modules()
    # Nor what only the collectors' renderers and loader need, nor shutil (bz2, lzma) and
    # tempfile (random), unless the interpreter itself loads them for argparse and ctypes.
    unneeded = {"probe.render.text", "probe.report.load", "shutil", "tempfile", "random", "bz2", "lzma"}
    assert not (modules & unneeded) - _loaded_by_the_interpreter(), modules & unneeded


@linux_only
def test_probe_children_are_forked_before_detection_and_reporting_load(tmp_path):
    """The fork parent stays small: the mechanisms, the attribution and the report builder
    are loaded once the probe children are forked (the parent detects while the flip cost
    is timed)."""
    modules, at_fork = _modules_of_run(tmp_path, "--output", str(tmp_path / "r.yaml"))
    later = {"probe.mechanisms", "probe.attribution.attribute", "probe.report.build"}
    assert later <= modules                  # the run did load them...
    assert not later & at_fork, later & at_fork   # ...after its first fork


@linux_only
def test_fork_parent_runs_no_python_at_fork_handlers(tmp_path):
    """random and threading register handlers every forked child runs (reseeding, thread
    bookkeeping): with them a bare child costs about twice as much. tempfile brings both."""
    _, at_fork = _modules_of_run(tmp_path, "--output", str(tmp_path / "r.yaml"),
                                 "--only", "dual_map_file", "patch_file_text")
    assert "probe.engine.worker" in at_fork and "ctypes" in at_fork   # what the children need is there
    # What the interpreter loads at start-up, for argparse and for ctypes is not ours to
    # avoid: on 3.9 argparse's help formatter imports shutil, which brings bz2 and with it
    # threading; on 3.14 ctypes imports sysconfig, which imports threading.
    ours = (at_fork & {"random", "threading", "tempfile"}) - _loaded_by_the_interpreter()
    assert not ours, ours


def _loaded_by_the_interpreter():
    """The modules a bare interpreter started as a run is (same flags, same environment)
    has once argparse has made a parser and ctypes is loaded."""
    code = ("import argparse, ctypes, sys\n"
            "argparse.ArgumentParser(prog='x').add_argument('--y')\n"
            "print(' '.join(sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=memprobe_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


@linux_only
def test_json_run_does_not_import_yaml(tmp_path):
    out = tmp_path / "r.json"
    modules, _ = _modules_of_run(tmp_path, "--output", str(out), "--only", "map_rx")
    assert '"schema_version": 1' in out.read_text()
    assert not _pyyaml_modules(modules), _pyyaml_modules(modules)
    assert "psutil" not in modules


def test_collector_modules_are_known():
    # The test above means something only if the table names real modules.
    assert _collector_modules()
    for module in _collector_modules():
        assert os.path.exists(os.path.join(ROOT, *module.split("."))) or \
            os.path.exists(os.path.join(ROOT, *module.split(".")) + ".py"), module


_TMPDIR_OF = {
    "ours": "import sys; from probe.engine import tmpfiles as _tmpfiles; "
            "assert 'tempfile' not in sys.modules; print(_tmpfiles.default_tmpdir())",
    "tempfile": "import tempfile; print(tempfile.gettempdir())",
}


@pytest.mark.parametrize("tmpdir_value", ["SUB", "SUB/missing", "", "relative"])
def test_default_tmpdir_is_the_one_tempfile_picks(tmp_path, tmpdir_value):
    """The run's directory goes where tempfile would put it (same mount, same verdicts)."""
    (tmp_path / "relative").mkdir()
    env = memprobe_env()
    env["TMPDIR"] = tmpdir_value.replace("SUB", str(tmp_path))
    found = {}
    for name, code in _TMPDIR_OF.items():
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env, cwd=str(tmp_path), timeout=60)
        assert proc.returncode == 0, proc.stderr
        found[name] = proc.stdout.strip()
    assert found["ours"] == found["tempfile"]
    assert os.listdir(str(tmp_path)) == ["relative"]   # the trial file is gone


def test_temp_file_is_private_and_new(tmp_path):
    from probe.engine import tmpfiles as _tmpfiles
    fd, path = _tmpfiles.make_temp_file(str(tmp_path), "memprobe-")
    try:
        assert os.path.dirname(path) == str(tmp_path)
        assert os.stat(path).st_mode & 0o777 == 0o600
        assert not os.get_inheritable(fd)
    finally:
        os.close(fd)
    made = _tmpfiles.make_temp_dir("memprobe-test-")
    try:
        assert os.stat(made).st_mode & 0o777 == 0o700
    finally:
        os.rmdir(made)
