"""`memprobe run --like-unit UNIT` on this host; the guest tests (tests/test_guests.py)
run it against a real unit under a real systemd."""

import os
import subprocess
import sys
from types import SimpleNamespace

from probe.engine import like_unit as _like_unit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_without_a_unit_to_copy_it_is_one_line_and_exit_1():
    # Without systemd as PID 1 (this CI host) or with it (no such unit): the same contract.
    proc = subprocess.run([sys.executable, "-m", "probe", "run", "--like-unit",
                           "memprobe-no-such-unit.service"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("memprobe: error: --like-unit: "), proc.stderr
    if not _like_unit.systemd_is_pid1():
        assert "systemd is not PID 1" in lines[0]


def test_systemd_is_pid1_follows_sd_booted(tmp_path):
    assert not _like_unit.systemd_is_pid1(str(tmp_path))
    (tmp_path / "run" / "systemd" / "system").mkdir(parents=True)
    assert _like_unit.systemd_is_pid1(str(tmp_path))


def test_show_output_is_parsed_with_values_that_hold_equals_signs():
    shown = _like_unit.parse_show("LoadState=loaded\nSELinuxContext=\nEnvironment=A=B\n")
    assert shown == {"LoadState": "loaded", "SELinuxContext": "", "Environment": "A=B"}


def test_transient_unit_runs_this_interpreter_by_absolute_path_with_the_copied_properties():
    args = SimpleNamespace(isolation="fork", timeout=10.0, arm_mode="arm", only=["map_rx"], jobs=None)
    argv = _like_unit.systemd_run_argv("x.service", {"MemoryDenyWriteExecute": "yes",
                                                     "User": "nobody"}, args)
    assert argv[:4] == ["systemd-run", "--wait", "--pipe", "--collect"]
    assert "-pMemoryDenyWriteExecute=yes" in argv and "-pUser=nobody" in argv
    command = argv[argv.index("--") + 1:]
    assert os.path.isabs(command[0]) and command[1:4] == ["-m", "probe", "run"]
    assert command[command.index("--output") + 1] == "-" and "--only" in command
