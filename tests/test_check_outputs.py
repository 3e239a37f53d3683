"""memprobe check: typos in the new forms, --format json, --github-summary, GitHub
annotations, `--run` with run's options, and probe.check() on the same forms."""

import json
import os
import re
import sys

import pytest

import probe
from probe.render import check_output as _check_output
from probe.errors import InputError

from helpers.collect_fixtures import ROOT, cli, real, variant, write, write_bytes  # noqa: F401

CONFINE = os.path.join(ROOT, "tests", "helpers", "confine.py")


def expect(tmp_path, text, name="expect.yaml"):
    return write_bytes(tmp_path, name, text.encode("utf-8"))


@pytest.mark.parametrize("text,needle", [
    ("strategies:\n  wx_flop: works\n", "expect.yaml:2:3: strategies.wx_flop: unknown strategy 'wx_flop' (known: "),
    ("strategies:\n  wx_flip: work\n", "expect.yaml:2:3: strategies.wx_flip: 'work' is not a strategy verdict"),
    ("strategies:\n  wx_flip: {verdict: works, blocked: mdwe}\n",
     "expect.yaml:2:29: strategies.wx_flip.blocked: unknown field; use verdict, blocked_by"),
    ("strategies:\n  wx_flip: {}\n", "expect.yaml:2:3: strategies.wx_flip: says nothing"),
    ("strategies: [wx_flip]\n", "expect.yaml:1:1: strategies: expected a mapping, got list"),
    ("nx: enforced\nany: []\n", "expect.yaml:2:1: any: empty group"),
    ("all: {wx_flip: works}\n", "expect.yaml:1:1: all: expected a list of expectations"),
    ("any:\n  - works\n", "expect.yaml:2:5: any[0]: expected a mapping such as {wx_flip: works}, got string"),
    ("any:\n  - {}\n", "expect.yaml:2:5: any[0]: empty mapping"),
    ("any:\n  - nx: enforced\n  - wx_flop: works\n", "expect.yaml:3:5: any[1].wx_flop: unknown capability 'wx_flop'"),
    ("all:\n  - any:\n      - strategies: {dual_maping: works}\n",
     "expect.yaml:3:22: all[0].any[0].strategies.dual_maping: unknown strategy"),
    ("any:\n  - sections: []\n", "expect.yaml:2:5: any[0].sections: sections go at the top level"),
    ("when: {os: linux}\nnx: enforced\n", "expect.yaml:1:1: when: `when` belongs in an entry of the top-level"),
    ("sections:\n  - when: {os: linux, cpu: x86_64}\n    nx: enforced\n",
     "expect.yaml:2:23: sections[0].when.cpu: unknown host field; use os, arch, "),
    ("sections:\n  - when: {arch: [x86_64, arm64]}\n    nx: enforced\n",
     "expect.yaml:2:12: sections[0].when.arch: 'arm64' is not an architecture memprobe reports (x86_64, "),
    ("sections:\n  - when: {os: []}\n    nx: enforced\n", "expect.yaml:2:12: sections[0].when.os: empty list"),
    ("sections:\n  - when: {}\n    nx: enforced\n", "expect.yaml:2:5: sections[0].when: expected a mapping of host"),
    ("sections:\n  - when: {os: {a: 1}}\n    nx: enforced\n", "sections[0].when.os: expected a value such as"),
    ("sections:\n  - nx: enforced\n", "expect.yaml:2:5: sections[0]: a section needs when:"),
    ("sections:\n  - when: {os: linux}\n", "expect.yaml:2:5: sections[0]: no expectations besides when"),
    ("sections: []\n", "expect.yaml:1:1: sections: expected a list of sections"),
    # a typo in a section this host does not match is refused all the same
    ("sections:\n  - when: {os: freebsd}\n    wx_flop: works\n", "expect.yaml:3:5: sections[0].wx_flop: unknown"),
    ("sections:\n  - when: {os: freebsd}\n    schema_version: 1\n", "sections[0].schema_version: schema_version goes"),
])
def test_typos_in_new_forms_are_one_line_with_file_and_line(real, tmp_path, text, needle):
    status, out, err = cli("check", "-e", expect(tmp_path, text), real.json("plain"))
    assert status == 1 and out == ""
    assert err.count("\n") == 1 and needle in err, err
    # --run refuses them before probing
    status, _, err = cli("check", "-e", expect(tmp_path, text), "--run", "--only", "map_rx")
    assert status == 1 and needle in err and err.count("\n") == 1


def test_hostile_words_in_new_forms_are_escaped(real, tmp_path):
    text = 'strategies:\n  "wx_\\e[31mflip": works\nsections:\n  - when: {os: "li\\e]0;x\\anux"}\n    nx: enforced\n'
    status, out, err = cli("check", "-e", expect(tmp_path, text), real.json("plain"))
    assert status == 1 and "\x1b" not in err and "\\x1b" in err


# --------------------------------------------------------------------------- outputs

def test_format_json(real, tmp_path):
    path = expect(tmp_path, "nx: enforced\nany:\n  - strategies: {wx_flip: works}\n  - map_rwx: allowed\n")
    for name, status, outcome in (("plain", 0, "holds"), ("mdwe", 2, "fails"), ("seccomp", 2, "fails")):
        code, out, err = cli("check", "-e", path, real.json(name), "--format", "json")
        assert code == status and err == ""
        result = json.loads(out)
        assert (result["outcome"], result["exit_code"]) == (outcome, status)
        assert [(e["kind"], e["line"], e["path"]) for e in result["expectations"]] == [
            ("capability", 1, "nx"), ("group", 2, "any")]
        assert result["counts"]["holds"] == (2 if status == 0 else 1)
        assert result["expectations"][1]["expected"] == "any of [strategies.wx_flip: works | map_rwx: allowed]"


def test_github_summary_appends(real, tmp_path):
    path = expect(tmp_path, "nx: enforced\nstrategies: {wx_flip: works}\n")
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    status, out, _ = cli("check", "-e", path, real.json("mdwe"), "--github-summary",
                         env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert status == 2 and "FAIL" in out
    text = summary.read_text()
    assert text.startswith("earlier step\n### memprobe check: \u274c linux/")
    assert "| \u274c fails | strategies.wx_flip: works | blocked by mdwe |" in text
    assert "2 expectations: 1 hold, 1 fail, 0 undecided" in text


def test_github_summary_without_the_variable_is_a_usage_error(real, tmp_path):
    path = expect(tmp_path, "nx: enforced\n")
    # empty counts as unset (cli() can only add to the environment)
    status, out, err = cli("check", "-e", path, real.json("plain"), "--github-summary",
                           env={"GITHUB_STEP_SUMMARY": ""})
    assert status == 1 and out == ""
    assert "GITHUB_STEP_SUMMARY is not set" in err and err.count("\n") == 1


def test_annotations_under_github_actions(real, tmp_path):
    name = "a,b:c%.yaml"
    path = expect(tmp_path, "nx: enforced\n# the JIT\nstrategies:\n  wx_flip: works\n"
                            "probes:\n  read_implies_exec: [allowed, denied]\n", name=name)
    doc = real.doc("seccomp")
    doc["probes"]["read_implies_exec"]["outcome"] = "skipped"
    report = write(tmp_path, "r.json", doc)
    status, out, err = cli("check", "-e", path, report, "--format", "json", env={"GITHUB_ACTIONS": "true"})
    assert status == 2 and json.loads(out)["outcome"] == "fails"
    lines = err.splitlines()
    file_property = _check_output.escape_property(path)
    assert "a%2Cb%3Ac%25.yaml" in file_property and "," not in file_property
    assert lines[0] == ("::error file=%s,line=4::memprobe check: expected strategies.wx_flip: works, "
                        "found blocked by seccomp" % file_property)
    assert re.match(r"::warning file=[^:]*,line=6::memprobe check: could not decide read_implies_exec", lines[1])
    assert len(lines) == 2
    # not under Actions: no annotations
    assert cli("check", "-e", path, report, env={"GITHUB_ACTIONS": ""})[2] == ""


def test_workflow_command_escaping():
    assert _check_output.escape_data("50% a\r\nb:c,d") == "50%25 a%0D%0Ab:c,d"
    assert _check_output.escape_property("50% a\r\nb:c,d") == "50%25 a%0D%0Ab%3Ac%2Cd"


# --------------------------------------------------------------------------- --run

def test_run_takes_runs_options(tmp_path):
    path = expect(tmp_path, "any:\n  - flip_rw_rx: allowed\n  - dual_map_memfd: allowed\nmap_rx: allowed\n")
    saved = str(tmp_path / "saved.json")
    args = ["check", "-e", path, "--run", "--only", "flip_rw_rx", "map_rx", "--only", "dual_map_memfd",
            "--jobs", "1", "--isolation", "spawn", "--timeout", "30", "--save", saved]
    status, out, err = cli(*args)
    assert status == 0, out + err
    with open(saved) as f:
        report = json.load(f)
    assert sorted(report["probes"]) == ["dual_map_memfd", "flip_rw_rx", "map_rx"]
    assert report["process"]["isolation"] == "spawn"
    # under MDWE flipping is refused, the memfd double mapping still works
    proc = __import__("subprocess").run(
        [sys.executable, CONFINE, "--mdwe", "--", sys.executable, "-m", "probe"] + args[:-2] + ["--format", "json"],
        capture_output=True, text=True, cwd=ROOT, timeout=300, env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 0, proc.stderr
    assert "flip_rw_rx denied EACCES" in json.loads(proc.stdout)["expectations"][0]["found"]


def test_run_pax_defaults_on_a_host_without_pax(tmp_path):
    path = expect(tmp_path, "map_rx: allowed\n")
    status, out, err = cli("check", "-e", path, "--run", "--only", "map_rx", "--pax-defaults")
    assert status == 0, out + err
    assert "--pax-defaults" in err          # says it runs as is: the interpreter carries no markings


@pytest.mark.parametrize("option", [["--only", "map_rx"], ["--jobs", "2"], ["--pax-defaults"],
                                    ["--isolation", "spawn"], ["--timeout", "5"]])
def test_run_options_without_run_are_a_usage_error(real, tmp_path, option):
    status, _, err = cli("check", "-e", expect(tmp_path, "nx: enforced\n"), real.json("plain"), *option)
    assert status == 1 and "with --run" in err and option[0] in err and err.count("\n") == 1


# --------------------------------------------------------------------------- the API

def test_api_check_takes_the_new_forms(real, tmp_path):
    expectations = {"nx": "enforced",
                    "any": [{"strategies": {"wx_flip": "works"}}, {"strategies": {"dual_mapping": "works"}}],
                    "sections": [{"when": {"os": "linux"}, "strategies": {"code_repatching": "works"}},
                                 {"when": {"os": "freebsd"}, "wx_flip": "blocked"}]}
    result = probe.check(real.doc("plain"), expectations)
    assert result and result.exit_code == 0
    assert [line.kind for line in result.lines] == ["capability", "group", "strategy"]
    result = probe.check(real.json("mdwe"), expectations)
    assert result.outcome == "fails" and result.exit_code == 2
    assert [line.verdict for line in result.lines] == ["holds", "holds", "fails"]
    freebsd = variant(real.doc("plain"), os_name="freebsd")
    assert [line.key for line in probe.check(freebsd, expectations).lines] == ["nx", "any", "wx_flip"]
    with pytest.raises(InputError, match="any: empty group"):
        probe.check(real.doc("plain"), {"any": []})
    with pytest.raises(InputError, match="sections.0..when.cpu: unknown host field"):
        probe.check(real.doc("plain"), {"sections": [{"when": {"cpu": "x"}, "nx": "enforced"}]})
    with pytest.raises(InputError, match=r"expect.yaml:2:5: any\[0\].wx_flop: unknown"):
        probe.check(real.doc("plain"), expect(tmp_path, "any:\n  - wx_flop: works\n"))


def test_readme_check_example(real, tmp_path):
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    start = readme.index("# expect-jit-matrix.yaml")
    path = expect(tmp_path, readme[start:readme.index("```", start)])
    assert [cli("check", "-e", path, real.json(n))[0] for n in ("plain", "mdwe", "seccomp-kill")] == [0, 2, 2]
    freebsd = write(tmp_path, "freebsd.json", variant(real.doc("plain"), os_name="freebsd", arch="aarch64"))
    status, out, _ = cli("check", "-e", path, freebsd)
    assert status == 0 and "not applied: sections[0] (when os linux)" in out


def test_readme_ci_example_any_holds_under_mdwe(real, tmp_path):
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    start = readme.index("# ci/expect-jit.yaml")
    path = expect(tmp_path, readme[start:readme.index("```", start)])
    for name in ("mdwe", "seccomp", "seccomp-kill"):
        status, out, _ = cli("check", "-e", path, real.json(name))
        lines = {line.split()[1]: line.split()[0] for line in out.splitlines()[1:-1]}
        assert status == 2 and lines == {"any": "ok", "code_repatching:": "FAIL", "nx:": "ok"}, out
