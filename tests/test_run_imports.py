"""What a plain `memprobe run` loads.

A run pays for every module it imports (start-up is most of its cost), so on Linux it
must not import psutil (only the BSDs read memory maps through it), nor any collector
command, nor subprocess (a fork run starts no other program), and a JSON run does not
import PyYAML at all.
"""

import os
import subprocess
import sys

import pytest

from probe import cli
from conftest import ROOT, memprobe_env

# Runs the CLI in this interpreter, then prints every module it loaded on stdout.
SCRIPT = ("import sys\n"
          "from probe import cli\n"
          "code = cli.main(sys.argv[1:])\n"
          "sys.stdout.write(' '.join(sorted(sys.modules)) + '\\n')\n"
          "sys.exit(code)\n")

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="psutil is a run's dependency on the BSDs only")


def _modules_of_run(tmp_path, *args):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, "run", "--quiet"] + list(args),
                          capture_output=True, text=True, env=memprobe_env(), cwd=str(tmp_path),
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


def _collector_modules():
    return {module for name, (module, _) in cli.COMMANDS.items() if name not in ("run", "_worker")}


@linux_only
def test_plain_run_imports_neither_psutil_nor_collectors(tmp_path):
    out = tmp_path / "r.yaml"
    modules = _modules_of_run(tmp_path, "--output", str(out))
    assert "probe._runner" in modules and "yaml" in modules   # it did run and write YAML
    assert out.read_text().startswith("schema_version: 1\n")
    assert "psutil" not in modules
    assert "subprocess" not in modules
    assert not modules & _collector_modules(), modules & _collector_modules()


@linux_only
def test_json_run_does_not_import_yaml(tmp_path):
    out = tmp_path / "r.json"
    modules = _modules_of_run(tmp_path, "--output", str(out), "--only", "map_rx")
    assert '"schema_version": 1' in out.read_text()
    assert "yaml" not in modules
    assert "psutil" not in modules


def test_collector_modules_are_known():
    # The test above means something only if the table names real modules.
    assert _collector_modules()
    for module in _collector_modules():
        assert os.path.exists(os.path.join(ROOT, *module.split("."))) or \
            os.path.exists(os.path.join(ROOT, *module.split(".")) + ".py"), module
