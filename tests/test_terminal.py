"""memprobe at a terminal: run's summary and progress on real pseudo-terminals, -V, each
command's own exit codes, --perspective colours, a missing PyYAML, report --for-issue."""

import os
import re
import subprocess
import sys

import pytest
import yaml

from helpers.pty import run_on_ptys
from probe.report import load as _load
from conftest import ROOT, memprobe_env, run_cli

REFERENCE = os.path.join(ROOT, "reports", "linux-aarch64-qemu-debian-bookworm.yaml")
ANSI = re.compile(r"\x1b\[[0-9;]*[mK]")


def tty_env(**extra):
    env = memprobe_env(**extra)
    env.pop("NO_COLOR", None)
    return env


def test_run_on_a_terminal_prints_the_summary_and_where_the_report_is(tmp_path):
    path = str(tmp_path / "r.yaml")
    status, out, err, _ = run_on_ptys("run", "--only", "map_rx", "flip_rw_rx", "-o", path, env=tty_env())
    assert status == 0, err
    plain = ANSI.sub("", out)
    assert "Capabilities" in plain and "Recommendation" in plain
    assert re.search(r"^  rx_mapping\s+works", plain, re.M)
    assert plain.rstrip("\n").endswith("Full report: %s" % path)
    assert "schema_version" not in plain
    assert "\x1b[32m" in out                                   # coloured: stdout is a terminal
    assert "memprobe: [2/2] probes done" in ANSI.sub("", err)  # progress on the terminal's stderr
    assert "running: " in err
    assert set(yaml.safe_load(open(path))["probes"]) == {"map_rx", "flip_rw_rx"}


def test_run_piped_prints_the_yaml_and_no_progress(tmp_path):
    path = str(tmp_path / "r.yaml")
    status, out, err, _ = run_on_ptys("run", "--only", "map_rx", "-o", path, stdout_tty=False,
                                      stderr_tty=False, env=tty_env())
    assert status == 0, err
    assert yaml.safe_load(out)["probes"]["map_rx"]["outcome"] == "allowed"
    assert "\r" not in err and "running" not in err and "\x1b" not in err + out


def test_run_with_stdout_on_a_terminal_but_stderr_piped_shows_no_progress(tmp_path):
    status, out, err, _ = run_on_ptys("run", "--only", "map_rx", "-o", str(tmp_path / "r.yaml"),
                                      stderr_tty=False, env=tty_env())
    assert status == 0, err
    assert "Full report:" in ANSI.sub("", out)
    assert "running" not in err and "\r" not in err


def test_run_output_dash_prints_yaml_even_on_a_terminal():
    status, out, err, _ = run_on_ptys("run", "--only", "map_rx", "-o", "-", env=tty_env())
    assert status == 0, err
    assert list(yaml.safe_load(out)["probes"]) == ["map_rx"]
    assert "Full report" not in out


def test_progress_names_a_hanging_probe_with_its_seconds_before_the_timeout(tmp_path):
    path = str(tmp_path / "r.yaml")
    status, _, err, events = run_on_ptys("run", "--only", "flip_rw_rx", "map_rx", "--timeout", "4",
                                         "-o", path, stdout_tty=False,
                                         env=tty_env(MEMPROBE_TEST_HANG="flip_rw_rx"))
    assert status == 0, err
    stderr_so_far, seen_running, seen_timeout = "", None, None
    for when, stream, text in events:
        if stream != "err":
            continue
        stderr_so_far += text
        if seen_running is None and re.search(r"running: flip_rw_rx [23]s", stderr_so_far):
            seen_running = when
        if seen_timeout is None and "memprobe: flip_rw_rx: no result within 4s" in stderr_so_far:
            seen_timeout = when
    assert seen_running is not None, err
    assert seen_timeout is not None and seen_running < seen_timeout, err
    assert yaml.safe_load(open(path))["probes"]["flip_rw_rx"]["outcome"] == "timeout"


def test_short_version_flag_is_the_long_one():
    short, long_ = run_cli("-V"), run_cli("--version")
    assert short.returncode == long_.returncode == 0
    assert short.stdout == long_.stdout and short.stdout.startswith("memprobe ")


@pytest.mark.parametrize("command, codes", [("run", {0, 1, 70, 129}), ("list", {0, 1, 70, 130}),
                                            ("redact", {0, 1, 70, 130}), ("report", {0, 1, 70, 130}),
                                            ("completion", {0, 1, 70, 130})])
def test_each_help_lists_its_own_exit_codes(command, codes):
    proc = run_cli(command, "--help")
    assert proc.returncode == 0
    listed = proc.stdout.split("exit codes:\n", 1)[1]
    assert {int(line.split()[0]) for line in listed.splitlines() if line[:5].strip().isdigit()} == codes
    if command == "run":
        assert "143 by SIGTERM" in listed


def _without_pyyaml(tmp_path, *args):
    """memprobe in an isolated interpreter whose sys.path has the project (and psutil, where
    installed: the BSDs need it) but no site-packages, so `import yaml` really fails."""
    site = tmp_path / "site"
    site.mkdir()
    try:
        import psutil
    except ImportError:
        pass
    else:
        os.symlink(os.path.dirname(psutil.__file__), str(site / "psutil"))
    code = ("import sys\n"
            "sys.path[:] = [%r, %r] + [p for p in sys.path if 'site-packages' not in p and "
            "'dist-packages' not in p]\n"
            "try:\n    import yaml\nexcept ImportError:\n    pass\nelse:\n    sys.exit('yaml still importable')\n"
            "from probe.cli import main\nsys.exit(main(%r))\n" % (ROOT, str(site), list(args)))
    return subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                          cwd=str(tmp_path), timeout=120)


@pytest.mark.parametrize("args", [("show", REFERENCE)])
def test_a_missing_pyyaml_is_one_line_saying_what_to_install(tmp_path, args):
    proc = _without_pyyaml(tmp_path, *args)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1 and "pip install PyYAML" in proc.stderr, proc.stderr
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr


def test_a_run_writes_yaml_without_pyyaml(tmp_path):
    """A run writes its YAML with memprobe's own emitter: a host without PyYAML can still be probed."""
    proc = _without_pyyaml(tmp_path, "run", "--only", "map_rx", "-o", "r.yaml")
    assert proc.returncode == 0, proc.stderr
    report = _load.load_report(str(tmp_path / "r.yaml"))
    assert list(report["probes"]) == ["map_rx"]   # load_report has checked it against the schema


def _painted(out, colour, word):
    return re.search(r"\x1b\[%sm%s\s*\x1b\[0m" % (colour, word), out) is not None


def test_show_colours_follow_the_perspective():
    jit = run_cli("show", "--colour", "always", REFERENCE).stdout
    hardening = run_cli("show", "--colour", "always", "--perspective", "hardening", REFERENCE).stdout
    assert _painted(jit, 32, "works") and _painted(jit, 31, "blocked")
    assert _painted(hardening, 31, "works") and _painted(hardening, 32, "blocked")
    assert not _painted(hardening, 32, "works")
    assert _painted(jit, 32, "enforced") and _painted(hardening, 32, "enforced")   # NX on: good to both


def test_matrix_cells_follow_the_perspective():
    jit = run_cli("matrix", REFERENCE).stdout
    hardening = run_cli("matrix", "--perspective", "hardening", REFERENCE).stdout
    assert "\u2705 works" in jit and "\u274c blocked" in jit
    assert "\u274c works" in hardening and "\u2705 blocked" in hardening
    assert "\u2705 blocked / enforced" in hardening
    html = run_cli("matrix", "--format", "html", "--perspective", "hardening", REFERENCE).stdout
    assert '<td class="bad" title="W-&gt;X flip' in html


def test_check_colours_what_was_found_from_the_perspective(tmp_path):
    expect = tmp_path / "e.yaml"
    expect.write_text("capabilities:\n  wx_flip: blocked\n")
    jit = run_cli("check", "-e", str(expect), "--colour", "always", REFERENCE)
    hardening = run_cli("check", "-e", str(expect), "--colour", "always", "--perspective", "hardening",
                        REFERENCE)
    assert jit.returncode == hardening.returncode == 2
    assert "(found \x1b[32mworks\x1b[0m" in jit.stdout
    assert "(found \x1b[31mworks\x1b[0m" in hardening.stdout


def test_check_run_and_report_show_progress_on_a_terminal(tmp_path):
    expect = tmp_path / "e.yaml"
    expect.write_text("probes:\n  map_rx: allowed\n")
    status, out, err, _ = run_on_ptys("check", "--run", "-e", str(expect), "--only", "map_rx", env=tty_env())
    assert status == 0, err + out
    assert "memprobe: [1/1] probes done" in ANSI.sub("", err)
    status, out, err, _ = run_on_ptys("report", "--for-issue", "--only", "map_rx", stdout_tty=False,
                                      env=tty_env())
    assert status == 0, err
    assert "memprobe: [1/1] probes done" in ANSI.sub("", err) and "<details>" in out
