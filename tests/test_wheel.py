"""The published artefact: `pip wheel .` installs in a fresh venv and works from there.

Builds the wheel with pip (the build backend comes from the package index, as for a
user), installs it with its dependencies in a new venv, and runs the installed command
from a directory outside the checkout, so nothing can come from the source tree.
It takes about 12 s and needs the package index, so it runs when MEMPROBE_TEST_WHEEL=1,
as `tox -e wheel` (and so CI) sets it.
"""

import glob
import json
import os
import subprocess
import sys
import zipfile

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DISTRIBUTION = "memprobe-wx"

pytestmark = pytest.mark.skipif(
    os.environ.get("MEMPROBE_TEST_WHEEL") != "1",
    reason="builds a wheel and a venv from the package index (~12 s): `tox -e wheel` runs it")


def _run(command, cwd, timeout=600):
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, "%s\n%s%s" % (command, proc.stdout[-3000:], proc.stderr[-3000:])
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel path, venv bin directory, a working directory outside the checkout)."""
    base = tmp_path_factory.mktemp("wheel")
    wheelhouse = base / "wheelhouse"
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheelhouse),
          ROOT], cwd=str(base))
    wheels = glob.glob(str(wheelhouse / "*.whl"))
    assert len(wheels) == 1, wheels
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=str(base))
    bindir = venv / "bin"
    _run([str(bindir / "python"), "-m", "pip", "install", "--quiet", wheels[0]], cwd=str(base))
    work = base / "work"
    work.mkdir()
    return wheels[0], bindir, str(work)


def test_wheel_name_metadata_licence_and_schema(installed):
    wheel, _, _ = installed
    assert os.path.basename(wheel).startswith("memprobe_wx-")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata_name = next(name for name in names if name.endswith(".dist-info/METADATA"))
        metadata = archive.read(metadata_name).decode("utf-8")
        entry_points = archive.read(metadata_name.replace("METADATA", "entry_points.txt")).decode("utf-8")
    assert "probe/report/schema/report-v1.json" in names
    assert any(name.endswith("LICENSE") and ".dist-info/" in name for name in names)
    assert "Name: memprobe-wx" in metadata
    assert "Project-URL: Source, " in metadata
    assert "memprobe = probe.cli:console_main" in entry_points
    assert not any(name.startswith(("tests/", "tools/", "benchmarks/")) for name in names)


def test_installed_command_runs_and_report_validates(installed, tmp_path):
    _, bindir, work = installed
    where = _run([str(bindir / "python"), "-c", "import probe; print(probe.__file__)"], cwd=work).strip()
    assert not where.startswith(ROOT + os.sep), where
    stdout = _run([str(bindir / "memprobe"), "run", "--only", "flip_rw_rx", "map_rwx", "--output", "-"],
                  cwd=work)
    report = yaml.safe_load(stdout)
    assert report["schema_version"] == 1
    assert set(report["probes"]) == {"flip_rw_rx", "map_rwx"}
    assert report["probes"]["flip_rw_rx"]["outcome"] == "allowed"
    saved = tmp_path / "report.yaml"
    saved.write_text(stdout)
    # validate reads the schema file shipped inside the wheel.
    assert "ok" in _run([str(bindir / "memprobe"), "validate", str(saved)], cwd=work)


def test_python_dash_m_probe_from_the_wheel(installed):
    _, bindir, work = installed
    assert _run([str(bindir / "python"), "-m", "probe", "--version"], cwd=work).startswith("memprobe ")
    listed = _run([str(bindir / "python"), "-m", "probe", "list"], cwd=work)
    assert "flip_rw_rx" in listed
    shown = json.loads(_run([str(bindir / "python"), "-m", "probe", "run", "--only", "exec_rw",
                             "--format", "json", "--output", "-"], cwd=work))
    assert shown["probes"]["exec_rw"]["outcome"] in ("crashed", "killed")
