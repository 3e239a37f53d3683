"""The logic of the memprobe GitHub Action (action.yml), runnable outside GitHub.

    INPUT_ONLY=... INPUT_EXPECT=... python tools/action/run.py

Reads the action's inputs from INPUT_* variables, runs `memprobe run`, then
`memprobe check` when an expectations file is given, appends the capability table
(and the check's verdicts) to $GITHUB_STEP_SUMMARY and writes the step outputs to
$GITHUB_OUTPUT. It uses the `memprobe` installed beside the interpreter running it.

Inputs (all optional):
  INPUT_ONLY         probe ids, separated by spaces or commas
  INPUT_EXPECT       expectations file for `memprobe check`
  INPUT_REDACT       true: pass --redact to `memprobe run`
  INPUT_TIMEOUT      per-probe timeout in seconds
  INPUT_REPORT_PATH  where to write the report (default: $RUNNER_TEMP/memprobe/memprobe-report.yaml)
  INPUT_FAIL_ON      failed (default): exit with check's status when an expectation fails;
                     undecided: also when one cannot be decided; never: always exit 0
  INPUT_SUMMARY      false: do not write the job summary

Outputs: report (absolute path), check-status (check's exit status, empty without
expect), check-outcome (passed, failed, undecided, error or not-run).

Exit status: 0, or check's status when INPUT_FAIL_ON says it fails the step, or
memprobe's own status when `run` fails, or 1 for a bad input.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional

FAIL_ON = ("failed", "undecided", "never")
TRUE_WORDS = ("true", "yes", "1", "on")
FALSE_WORDS = ("false", "no", "0", "off", "")
OUTCOMES = {0: "passed", 2: "failed", 3: "undecided"}
_PROBE_ID = re.compile(r"^[a-z][a-z0-9_]*$")


class InputProblem(Exception):
    """An action input that cannot be used."""


def _flag(inputs: Dict[str, str], name: str, default: bool) -> bool:
    word = inputs.get(name, "").strip().lower()
    if word == "":
        return default
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise InputProblem("input %s: %r is neither true nor false" % (name.lower(), inputs[name]))


def read_inputs(environ: Dict[str, str]) -> Dict[str, object]:
    """The action's inputs from INPUT_* variables, checked; raises InputProblem."""
    raw = {key[len("INPUT_"):]: value for key, value in environ.items() if key.startswith("INPUT_")}
    only = [word for word in re.split(r"[\s,]+", raw.get("ONLY", "")) if word]
    bad = [word for word in only if not _PROBE_ID.match(word)]
    if bad:
        raise InputProblem("input only: %r is not a probe id (see `memprobe list`)" % bad[0])
    fail_on = raw.get("FAIL_ON", "").strip() or "failed"
    if fail_on not in FAIL_ON:
        raise InputProblem("input fail-on: %r is not one of %s" % (fail_on, ", ".join(FAIL_ON)))
    timeout = raw.get("TIMEOUT", "").strip()
    if timeout:
        try:
            if not float(timeout) > 0:
                raise ValueError(timeout)
        except ValueError:
            raise InputProblem("input timeout: %r is not a positive number of seconds" % timeout) from None
    return {
        "only": only,
        "expect": raw.get("EXPECT", "").strip(),
        "redact": _flag(raw, "REDACT", False),
        "timeout": timeout,
        "report": raw.get("REPORT_PATH", "").strip(),
        "fail_on": fail_on,
        "summary": _flag(raw, "SUMMARY", True),
    }


def report_path(inputs: Dict[str, object], environ: Dict[str, str]) -> str:
    """Absolute path of the report: the input, else under $RUNNER_TEMP (or a new temp dir)."""
    path = str(inputs["report"])
    if not path:
        base = environ.get("RUNNER_TEMP") or tempfile.mkdtemp(prefix="memprobe-action-")
        path = os.path.join(base, "memprobe", "memprobe-report.yaml")
    if "\n" in path or "\r" in path:
        raise InputProblem("input report-path: a path with a line break cannot be an output")
    return os.path.abspath(path)


def memprobe_command() -> List[str]:
    """The memprobe installed with this interpreter (the action installs it in a venv)."""
    beside = os.path.join(os.path.dirname(sys.executable), "memprobe")
    if os.access(beside, os.X_OK):
        return [beside]
    found = shutil.which("memprobe")
    if found:
        return [found]
    raise InputProblem("memprobe is not installed beside %s nor on PATH" % sys.executable)


def run_command(memprobe: List[str], inputs: Dict[str, object], report: str) -> List[str]:
    """`memprobe run` with the options the inputs ask for; --redact only when asked."""
    command = memprobe + ["run", "--quiet", "--output", report]
    if inputs["only"]:
        command += ["--only"] + list(inputs["only"])
    if inputs["timeout"]:
        command += ["--timeout", str(inputs["timeout"])]
    if inputs["redact"]:
        command.append("--redact")
    return command


def check_command(memprobe: List[str], inputs: Dict[str, object], report: str) -> List[str]:
    return memprobe + ["check", "--color", "never", "--expect", str(inputs["expect"]), report]


def fails_step(status: Optional[int], fail_on: str) -> bool:
    """Whether check's exit status fails the step under the fail-on input."""
    if status is None or status == 0 or fail_on == "never":
        return False
    if status == 3:
        return fail_on == "undecided"
    return True


def write_outputs(path: Optional[str], outputs: Dict[str, str]) -> None:
    """Append name=value lines to $GITHUB_OUTPUT (printed when it is not set)."""
    lines = "".join("%s=%s\n" % (name, value) for name, value in outputs.items())
    if not path:
        sys.stdout.write(lines)
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(lines)


def _append_summary(path: str, text: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


def check_summary(expect: str, status: int, output: str) -> str:
    """Markdown for the job summary: the check's outcome and its own lines."""
    outcome = OUTCOMES.get(status, "error (exit %d)" % status)
    fence = "````" if "```" in output else "```"
    return "\n### memprobe check `%s`: %s\n\n%stext\n%s\n%s\n" % (
        expect.replace("`", "'"), outcome, fence, output.rstrip("\n"), fence)


def main(environ: Dict[str, str]) -> int:
    try:
        inputs = read_inputs(environ)
        report = report_path(inputs, environ)
        memprobe = memprobe_command()
    except InputProblem as problem:
        sys.stderr.write("::error title=memprobe action::%s\n" % problem)
        return 1
    os.makedirs(os.path.dirname(report), exist_ok=True)
    outputs = {"report": "", "check-status": "", "check-outcome": "not-run"}
    status = subprocess.call(run_command(memprobe, inputs, report))
    if status != 0:
        sys.stderr.write("::error title=memprobe run::memprobe run exited with status %d\n" % status)
        outputs["check-outcome"] = "error" if inputs["expect"] else "not-run"
        write_outputs(environ.get("GITHUB_OUTPUT"), outputs)
        return status
    outputs["report"] = report
    summary = environ.get("GITHUB_STEP_SUMMARY") if inputs["summary"] else None
    if summary:
        table = subprocess.call(memprobe + ["matrix", "--github-summary", "--title", "memprobe", report],
                                stdout=subprocess.DEVNULL)
        if table != 0:      # the report is still there and uploaded: a warning, not a failure
            sys.stderr.write("::warning title=memprobe matrix::no table in the job summary (exit %d)\n" % table)
    check_status = None
    if inputs["expect"]:
        proc = subprocess.run(check_command(memprobe, inputs, report), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True)
        check_status = proc.returncode
        sys.stdout.write(proc.stdout)
        outputs["check-status"] = str(check_status)
        outputs["check-outcome"] = OUTCOMES.get(check_status, "error")
        if summary:
            _append_summary(summary, check_summary(str(inputs["expect"]), check_status, proc.stdout))
    write_outputs(environ.get("GITHUB_OUTPUT"), outputs)
    if fails_step(check_status, str(inputs["fail_on"])):
        sys.stderr.write("::error title=memprobe check::%s: %s (exit %d)\n"
                         % (inputs["expect"], outputs["check-outcome"], check_status))
        return check_status
    return 0


if __name__ == "__main__":
    sys.exit(main(dict(os.environ)))
