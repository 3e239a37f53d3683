"""The CI files that cannot run here: action.yml, .github/workflows, the README's YAML.

GitHub runs the workflows; here their structure is checked (pinned actions, least
permissions, no persisted credentials, the matrix the project promises), every yaml
block of README.md must parse, and every expectations file (.github/expect/ and the
README's) goes through `memprobe check` against real reports of this machine.
"""

import configparser
import glob
import os
import re

import pytest
import yaml

from helpers.collect_fixtures import cli
from conftest import ROOT, UNAVAILABLE, run_cli

WORKFLOWS = sorted(glob.glob(os.path.join(ROOT, ".github", "workflows", "*.yml")))
EXPECT_DIR = os.path.join(ROOT, ".github", "expect")
_PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
_YAML_BLOCK = re.compile(r"^```yaml[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def readme_yaml_blocks():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in _YAML_BLOCK.finditer(text)]


def steps_of(doc):
    if "runs" in doc:
        yield "action", doc["runs"]["steps"]
    for name, job in (doc.get("jobs") or {}).items():
        yield name, job.get("steps", [])


def test_readme_yaml_blocks_all_parse():
    blocks = readme_yaml_blocks()
    assert len(blocks) >= 4
    for line, text in blocks:
        try:
            yaml.safe_load(text)
        except yaml.YAMLError as error:
            pytest.fail("README.md line %d: yaml block does not parse: %s" % (line, error))


def test_readme_has_a_complete_workflow_using_the_action():
    workflows = [yaml.safe_load(text) for _, text in readme_yaml_blocks()]
    # PyYAML reads the key `on` as True (YAML 1.1).
    workflows = [doc for doc in workflows if isinstance(doc, dict) and "jobs" in doc and True in doc]
    assert len(workflows) == 1
    doc = workflows[0]
    assert doc["permissions"] == {}
    uses = [step.get("uses", "") for _, steps in steps_of(doc) for step in steps]
    assert any(use.startswith("memprobe/memprobe@") for use in uses)
    action_steps = [step for _, steps in steps_of(doc) for step in steps
                    if step.get("uses", "").startswith("memprobe/memprobe@")]
    inputs = load(os.path.join(ROOT, "action.yml"))["inputs"]
    assert set(action_steps[0]["with"]) <= set(inputs)
    assert "--github-summary" in str(doc["jobs"]["table"])


@pytest.mark.parametrize("path", WORKFLOWS + [os.path.join(ROOT, "action.yml")],
                         ids=os.path.basename)
def test_actions_pinned_and_credentials_not_persisted(path):
    doc = load(path)
    for job, steps in steps_of(doc):
        for step in steps:
            use = step.get("uses")
            if use is None or use.startswith("./"):
                continue
            assert _PINNED.match(use), "%s: job %s uses %s, not a full commit hash" % (path, job, use)
            if use.startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, (path, job)


@pytest.mark.parametrize("path", WORKFLOWS, ids=os.path.basename)
def test_least_permissions(path):
    doc = load(path)
    assert doc["permissions"] == {}, "%s: the workflow grants nothing by default" % path
    for name, job in doc["jobs"].items():
        assert job.get("permissions") in ({}, {"contents": "read"}), (path, name)


def test_suite_runs_on_every_python_setup_cfg_claims():
    config = configparser.ConfigParser()
    config.read(os.path.join(ROOT, "setup.cfg"))
    minimum = config["options"]["python_requires"].strip()
    assert minimum == ">=3.9"
    tox = configparser.ConfigParser()
    tox.read(os.path.join(ROOT, "tox.ini"))
    claimed = ["%s.%s" % (env[2], env[3:]) for env in tox["tox"]["envlist"].replace(" ", "").split(",")]
    matrix = load(os.path.join(ROOT, ".github", "workflows", "tests.yml"))["jobs"]["suite"]["strategy"]["matrix"]
    assert matrix["python"] == claimed == ["3.9", "3.10", "3.11", "3.12", "3.13"]


def test_probe_workflow_legs():
    jobs = load(os.path.join(ROOT, ".github", "workflows", "probe.yml"))["jobs"]
    assert jobs["linux"]["strategy"]["matrix"]["os"] == ["ubuntu-24.04", "ubuntu-24.04-arm"]
    assert [step.get("uses") for step in jobs["linux"]["steps"]][-2] == "./"
    assert jobs["freebsd"]["strategy"]["matrix"]["allow_wx"] == ["1", "0"]
    vm = next(step for step in jobs["freebsd"]["steps"] if "freebsd-vm" in step.get("uses", ""))
    assert vm["with"]["release"].startswith("14.")
    assert "tools/ci/freebsd-leg.sh" in vm["with"]["run"]
    assert sorted(jobs["matrix"]["needs"]) == ["freebsd", "linux"]
    assert "matrix ci-reports --github-summary" in str(jobs["matrix"]["steps"])


def test_action_inputs_reach_the_script():
    action = load(os.path.join(ROOT, "action.yml"))
    assert {"expect", "redact", "only", "artifact-name"} <= set(action["inputs"])
    assert {"report", "check-status"} <= set(action["outputs"])
    step = next(step for step in action["runs"]["steps"] if step.get("id") == "memprobe")
    assert "tools/action/run.py" in step["run"]
    for name in action["inputs"]:
        if name in ("artifact-name", "python-version"):
            continue                     # used by the action's own steps, not by the script
        variable = "INPUT_" + name.upper().replace("-", "_")
        assert step["env"][variable] == "${{ inputs.%s }}" % name
    for output in action["outputs"].values():
        assert output["value"].startswith("${{ steps.memprobe.outputs.")


def _readme_expectations(tmp_path):
    text = next(text for _, text in readme_yaml_blocks() if text.startswith("# ci/expect-jit.yaml"))
    path = tmp_path / "expect-jit.yaml"
    path.write_text(text)
    return str(path)


def test_readme_jit_expectations_hold_plain_and_fail_under_mdwe(reports, tmp_path):
    expect = _readme_expectations(tmp_path)
    status, out, err = cli("check", "--expect", expect, reports.path("plain"))
    assert status == 0, out + err
    status, out, err = cli("check", "--expect", expect, reports.path("mdwe"))
    assert status == 2, out + err
    assert "wx_flip" in out and "mdwe" in out


@pytest.mark.parametrize("name, status", [
    ("github-ubuntu.yaml", 0),            # the runners: an unconfined Linux like this one
    ("freebsd14-allow-wx-1.yaml", 0),     # nothing W^X-specific: holds on unconfined Linux too
    ("freebsd14-allow-wx-0.yaml", 2),     # demands that RWX be refused: fails here
])
def test_workflow_expectations_parse_and_decide(reports, name, status):
    status_found, out, err = cli("check", "--expect", os.path.join(EXPECT_DIR, name), reports.path("plain"))
    assert status_found == status, out + err


def test_freebsd_allow_wx_0_fails_exactly_on_simultaneous_w_and_x(reports):
    _, out, _ = cli("check", "-q", "--expect", os.path.join(EXPECT_DIR, "freebsd14-allow-wx-0.yaml"),
                    reports.path("plain"))
    failed = sorted(line.split()[1].rstrip(":") for line in out.splitlines() if line.startswith("FAIL"))
    assert failed == ["map_rwx", "rwx_flip", "rwx_mapping"]


def test_every_expectations_file_is_used_by_a_workflow():
    text = "".join(open(path, encoding="utf-8").read() for path in WORKFLOWS)
    text += open(os.path.join(ROOT, "tools", "ci", "freebsd-leg.sh"), encoding="utf-8").read()
    for path in glob.glob(os.path.join(EXPECT_DIR, "*.yaml")):
        name = os.path.basename(path)
        assert name in text or name.replace("-1.", "-$allow_wx.").replace("-0.", "-$allow_wx.") in text, name


def test_freebsd_allow_wx_0_capabilities_under_the_same_rule_on_linux(tmp_path):
    """FreeBSD's allow_wx=0 refuses only W and X at once (EACCES); a seccomp filter with that
    rule gives this kernel the same behaviour, and every capability line of the file holds.
    Only the attribution to freebsd-wx cannot be decided on Linux."""
    report = str(tmp_path / "wx.json")
    proc = run_cli("run", "--format", "json", "--output", report, "--quiet", confine=["--seccomp", "wx"])
    if proc.returncode == UNAVAILABLE:
        pytest.skip(proc.stderr.strip())
    assert proc.returncode == 0, proc.stderr
    status, out, err = cli("check", "--expect", os.path.join(EXPECT_DIR, "freebsd14-allow-wx-0.yaml"), report)
    assert status == 3, out + err
    verdicts = {line.split()[1].rstrip(":"): line.split()[0] for line in out.splitlines()
                if line.split() and line.split()[0] in ("ok", "FAIL", "UNDECIDED")}
    assert verdicts == {"nx": "ok", "wx_flip": "ok", "dual_mapping": "ok", "rwx_mapping": "ok",
                        "rwx_flip": "ok", "map_rwx": "UNDECIDED"}
