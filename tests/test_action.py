"""tools/action/run.py, the GitHub Action's logic, run as the action runs it.

Each test runs the script in a child process with the action's INPUT_* variables and
GITHUB_OUTPUT / GITHUB_STEP_SUMMARY / RUNNER_TEMP in a temporary directory, on this
kernel (plain, or under PR_SET_MDWE through tests/helpers/confine.py), and reads back the
outputs, the job summary, the report and the exit status.
"""

import os
import socket
import subprocess
import sys

import pytest
import yaml

from conftest import CONFINE, ROOT, UNAVAILABLE

SCRIPT = os.path.join(ROOT, "tools", "action", "run.py")
PROBES = "flip_rw_rx, map_rwx exec_rw"

sys.path.insert(0, os.path.dirname(SCRIPT))
import run as action  # noqa: E402  (tools/action/run.py)


def _installed():
    try:
        return bool(action.memprobe_command())
    except action.InputProblem:
        return False


# The action runs the memprobe it installed; the Debian chroot suites run memprobe from
# PYTHONPATH, where no `memprobe` command exists.
pytestmark = pytest.mark.skipif(not _installed(), reason="memprobe is not installed as a command "
                                "beside this interpreter or on PATH (run from PYTHONPATH)")


class Step:
    """One run of the script: exit status, stdout, stderr, outputs and summary."""

    def __init__(self, proc, output_file, summary_file):
        self.status = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.outputs = {}
        if os.path.exists(output_file):
            with open(output_file) as f:
                for line in f.read().splitlines():
                    name, _, value = line.partition("=")
                    self.outputs[name] = value
        self.summary = ""
        if os.path.exists(summary_file):
            with open(summary_file) as f:
                self.summary = f.read()


def run_step(tmp_path, confine=(), **inputs):
    """Run the script with INPUT_<NAME> for each keyword (report_path -> INPUT_REPORT_PATH)."""
    output_file = str(tmp_path / "github_output")
    summary_file = str(tmp_path / "step_summary")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("INPUT_", "GITHUB_", "RUNNER_"))}
    env.update({"GITHUB_OUTPUT": output_file, "GITHUB_STEP_SUMMARY": summary_file,
                "RUNNER_TEMP": str(tmp_path / "runner_temp")})
    os.makedirs(env["RUNNER_TEMP"], exist_ok=True)
    env.update({"INPUT_" + name.upper(): value for name, value in inputs.items()})
    command = [sys.executable, SCRIPT]
    if confine:
        command = [sys.executable, CONFINE] + list(confine) + ["--"] + command
    proc = subprocess.run(command, cwd=str(tmp_path), env=env, capture_output=True, text=True,
                          timeout=180)
    if proc.returncode == UNAVAILABLE and confine:
        pytest.skip(proc.stderr.strip())
    return Step(proc, output_file, summary_file)


def expectations(tmp_path, text):
    path = tmp_path / "expect.yaml"
    path.write_text(text)
    return str(path)


def load_report(step):
    with open(step.outputs["report"]) as f:
        return yaml.safe_load(f)


def test_plain_host_check_passes_outputs_and_summary(tmp_path):
    expect = expectations(tmp_path, "wx_flip: works\nnx: enforced\nflip_rw_rx: allowed\n")
    step = run_step(tmp_path, only=PROBES, expect=expect)
    assert step.status == 0, step.stderr
    assert step.outputs["check-status"] == "0"
    assert step.outputs["check-outcome"] == "passed"
    report_path = step.outputs["report"]
    assert report_path == str(tmp_path / "runner_temp" / "memprobe" / "memprobe-report.yaml")
    assert set(load_report(step)["probes"]) == {"flip_rw_rx", "map_rwx", "exec_rw"}
    # The capability table (from memprobe matrix --github-summary), then the check's verdicts.
    assert "| host | `nx` |" in step.summary
    assert "✅ works" in step.summary
    assert "### memprobe check `%s`: passed" % expect in step.summary
    assert "3 expectations: 3 hold, 0 fail, 0 undecided" in step.summary
    assert "::error" not in step.stderr


def test_mdwe_check_fails_the_step_but_the_report_is_there(tmp_path):
    expect = expectations(tmp_path, "wx_flip: works\n")
    step = run_step(tmp_path, confine=["--mdwe"], only=PROBES, expect=expect)
    assert step.status == 2
    assert step.outputs["check-status"] == "2"
    assert step.outputs["check-outcome"] == "failed"
    assert load_report(step)["probes"]["flip_rw_rx"]["outcome"] == "denied"
    assert "❌ blocked (mdwe)" in step.summary
    assert ": failed" in step.summary
    assert "::error title=memprobe check::%s: failed (exit 2)" % expect in step.stderr


def test_fail_on_never_leaves_the_status_to_the_workflow(tmp_path):
    expect = expectations(tmp_path, "wx_flip: works\n")
    step = run_step(tmp_path, confine=["--mdwe"], only=PROBES, expect=expect, fail_on="never")
    assert step.status == 0
    assert step.outputs["check-status"] == "2"
    assert step.outputs["check-outcome"] == "failed"


@pytest.mark.parametrize("fail_on, status", [("failed", 0), ("undecided", 3)])
def test_undecided_fails_only_when_asked(tmp_path, fail_on, status):
    # patch_rwx is not among the probes run, so check cannot decide it (exit 3).
    expect = expectations(tmp_path, "patch_rwx: allowed\n")
    step = run_step(tmp_path, only=PROBES, expect=expect, fail_on=fail_on)
    assert step.status == status
    assert step.outputs["check-status"] == "3"
    assert step.outputs["check-outcome"] == "undecided"


def test_without_expect_nothing_is_checked(tmp_path):
    report = tmp_path / "out" / "host.yaml"
    step = run_step(tmp_path, only="map_rx", report_path=str(report))
    assert step.status == 0, step.stderr
    assert step.outputs == {"report": str(report), "check-status": "", "check-outcome": "not-run"}
    assert report.exists()
    assert "memprobe check" not in step.summary
    assert "| host | `rx_mapping` |" in step.summary


def test_summary_false_leaves_the_job_summary_alone(tmp_path):
    step = run_step(tmp_path, only="map_rx", summary="false")
    assert step.status == 0, step.stderr
    assert step.summary == ""


@pytest.mark.parametrize("name, value, message", [
    ("fail_on", "sometimes", "input fail-on: 'sometimes' is not one of failed, undecided, never"),
    ("only", "flip_rw_rx;rm", "input only: 'flip_rw_rx;rm' is not a probe id (see `memprobe list`)"),
    ("redact", "maybe", "input redact: 'maybe' is neither true nor false"),
    ("timeout", "-1", "input timeout: '-1' is not a positive number of seconds"),
])
def test_bad_input_is_one_error_line(tmp_path, name, value, message):
    step = run_step(tmp_path, **{name: value})
    assert step.status == 1
    assert step.stderr.strip().splitlines() == ["::error title=memprobe action::" + message]
    assert step.outputs == {}


def test_failed_run_fails_the_step_with_its_status(tmp_path):
    expect = expectations(tmp_path, "wx_flip: works\n")
    step = run_step(tmp_path, only="no_such_probe", expect=expect)
    assert step.status == 1
    assert step.outputs == {"report": "", "check-status": "", "check-outcome": "error"}
    assert "::error title=memprobe run::memprobe run exited with status 1" in step.stderr
    assert "Traceback" not in step.stderr


def test_expectations_file_error_is_reported_not_hidden(tmp_path):
    step = run_step(tmp_path, only="map_rx", expect=expectations(tmp_path, "wx_flip: wrks\n"))
    assert step.status == 1
    assert step.outputs["check-status"] == "1"
    assert step.outputs["check-outcome"] == "error"
    assert "expect.yaml" in step.summary and "error (exit 1)" in step.summary


def test_run_command_passes_redact_only_when_set():
    base = {"only": ["map_rx"], "timeout": "", "redact": False}
    assert action.run_command(["memprobe"], base, "r.yaml") == [
        "memprobe", "run", "--quiet", "--output", "r.yaml", "--only", "map_rx"]
    redacted = action.run_command(["memprobe"], dict(base, redact=True, timeout="2.5"), "r.yaml")
    assert redacted[-3:] == ["--timeout", "2.5", "--redact"]
    assert action.read_inputs({"INPUT_REDACT": "true"})["redact"] is True
    assert action.read_inputs({"INPUT_REDACT": ""})["redact"] is False
    assert action.read_inputs({})["redact"] is False


def _run_has_redact():
    memprobe = action.memprobe_command()
    proc = subprocess.run(memprobe + ["run", "--help"], capture_output=True, text=True)
    return "--redact" in proc.stdout


def test_redact_input_reaches_memprobe_run(tmp_path):
    if not _run_has_redact():
        pytest.skip("this memprobe has no `run --redact` yet")
    step = run_step(tmp_path, only="map_rx", redact="true")
    assert step.status == 0, step.stderr
    with open(step.outputs["report"]) as f:
        assert socket.gethostname() not in f.read()
