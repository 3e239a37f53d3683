"""The public Python API, through the names `probe` exports and nothing else."""

import gc
import json
import math
import os
import pathlib
import subprocess
import sys

import pytest
import yaml

import probe
from conftest import CONFINE, ROOT, UNAVAILABLE, memprobe_env

PUBLIC = ["run", "load", "validate", "check", "diff", "CheckResult", "CheckLine", "SCHEMA_VERSION",
          "MemprobeError", "UsageError", "InputError", "ReportError", "HostError", "__version__"]


def python(code, confine=()):
    """Run `python -c code` (optionally under tests/helpers/confine.py); CompletedProcess."""
    cmd = [sys.executable, "-c", code]
    if confine:
        cmd = [sys.executable, CONFINE] + list(confine) + ["--"] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, env=memprobe_env(), cwd=ROOT, timeout=120)


# --------------------------------------------------------------------------- the package

def test_public_names_and_error_classes():
    assert sorted(probe.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert hasattr(probe, name), name
    assert probe.SCHEMA_VERSION == 1
    for cls in (probe.UsageError, probe.InputError, probe.HostError):
        assert issubclass(cls, probe.MemprobeError)
    assert issubclass(probe.ReportError, probe.InputError)


def test_import_probe_stays_cheap():
    """`memprobe run` imports probe: it must not bring in the engine, yaml or psutil."""
    proc = python("import sys; before = set(sys.modules); import probe; "
                  "print(' '.join(sorted(set(sys.modules) - before)))")
    assert proc.returncode == 0, proc.stderr
    added = set(proc.stdout.split())
    assert {"probe", "probe.api", "probe.errors"} <= added
    for heavy in ("yaml", "psutil", "typing", "ctypes", "probe.engine.runner", "probe.commands.run", "probe.report.collect", "probe.report.load"):
        assert heavy not in added, heavy


# --------------------------------------------------------------------------- run

def test_run_only_selected_probes_for_real():
    report = probe.run(only=["exec_rw", "flip_rw_rx", "dual_map_memfd"])
    assert report["schema_version"] == probe.SCHEMA_VERSION
    assert list(report["probes"]) == ["exec_rw", "flip_rw_rx", "dual_map_memfd"]
    assert probe.validate(report) == []
    exec_rw, flip = report["probes"]["exec_rw"], report["probes"]["flip_rw_rx"]
    assert (exec_rw["outcome"], exec_rw["signal"]) == ("crashed", "SIGSEGV")
    assert flip["outcome"] == "allowed" and flip["value"] == flip["expected"] == 23
    assert report["strategies"]["wx_flip"]["verdict"] == "works"
    assert report["process"]["isolation"] == "fork"


def test_run_takes_one_id_and_spawn_isolation():
    report = probe.run(only="map_rwx", isolation="spawn", timeout=30, jobs=1)
    assert list(report["probes"]) == ["map_rwx"]
    assert report["probes"]["map_rwx"]["outcome"] == "allowed"
    assert report["process"]["isolation"] == "spawn"


def test_run_leaves_the_callers_objects_unfrozen():
    gc.unfreeze()
    probe.run(only=["map_rx"])
    assert gc.get_freeze_count() == 0


SCRIPT_UNDER_MDWE = """
import json, probe
report = probe.run(only=["flip_rw_rx", "dual_map_memfd"])
result = probe.check(report, {"wx_flip": "works", "dual_mapping": "works"})
print(json.dumps({"report": report, "outcome": result.outcome, "exit": result.exit_code,
                  "lines": [[l.key, l.verdict] for l in result.lines]}))
"""


def test_run_and_check_under_real_mdwe():
    proc = python(SCRIPT_UNDER_MDWE, confine=["--mdwe"])
    if proc.returncode == UNAVAILABLE:
        pytest.skip(proc.stderr.strip())
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    flip = out["report"]["probes"]["flip_rw_rx"]
    assert (flip["outcome"], flip["errno_name"]) == ("denied", "EACCES")
    assert flip["attribution"][0]["mechanism"] == "mdwe"
    assert flip["attribution"][0]["confidence"] == "confirmed"
    assert (out["outcome"], out["exit"]) == ("fails", 2)
    assert out["lines"] == [["wx_flip", "fails"], ["dual_mapping", "holds"]]


@pytest.mark.parametrize("kwargs, words", [
    ({"only": ["no_such_probe"]}, "no_such_probe"),
    ({"only": []}, "no probe ids"),
    ({"only": [3]}, "strings"),
    ({"isolation": "thread"}, "isolation"),
    ({"timeout": 0}, "timeout"),
    ({"timeout": math.nan}, "timeout"),
    ({"timeout": math.inf}, "timeout"),
    ({"timeout": "5"}, "timeout"),
    ({"jobs": 0}, "jobs"),
    ({"jobs": True}, "jobs"),
])
def test_run_refuses_bad_arguments(kwargs, words):
    with pytest.raises(probe.UsageError, match=words):
        probe.run(**kwargs)


# --------------------------------------------------------------------------- load

def test_load_reads_paths_texts_and_bytes(reports, tmp_path):
    path = reports.path("plain")
    expected = probe.load(path)
    assert expected == reports.get("plain")
    text = pathlib.Path(path).read_text()
    yaml_copy = tmp_path / "plain.yaml"
    yaml_copy.write_text(probe_yaml(text))
    assert probe.load(pathlib.Path(path)) == expected
    assert probe.load(text) == expected                 # JSON text
    assert probe.load(text.encode()) == expected
    assert probe.load(str(yaml_copy)) == expected       # YAML file
    assert probe.load(yaml_copy.read_text()) == expected


def probe_yaml(json_text):
    """The same report as YAML (block style, as memprobe writes it)."""
    return yaml.safe_dump(json.loads(json_text), sort_keys=False, default_flow_style=False)


HOSTILE = [
    ("schema_version: 1\nhost: !!python/object/apply:os.system ['true']\n", "!!python/object/apply"),
    ("schema_version: 1\na: &x [1]\nb: *x\n", "alias"),
    ("schema_version: 1\nhost: 1\nhost: 2\n", "duplicate"),
    ("schema_version: 2\nhost: {}\n", "schema_version 1"),
    ("[" * 5000 + "]" * 5000 + "\n", "nest"),     # our limit or libyaml's, whichever is lower
]


@pytest.mark.parametrize("text, words", HOSTILE, ids=["tag", "alias", "duplicate", "version", "deep"])
def test_load_refuses_hostile_or_foreign_text(text, words):
    with pytest.raises(probe.ReportError) as info:
        probe.load(text)
    message = str(info.value)
    assert message.startswith("<text>") and "\n" not in message
    assert words in message


def test_load_errors_name_the_file(tmp_path, monkeypatch):
    with pytest.raises(probe.InputError) as info:
        probe.load(tmp_path / "missing.yaml")
    assert not isinstance(info.value, probe.ReportError)
    assert "missing.yaml: cannot read" in str(info.value)
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema_version: 1\nhost: {os: linux}\n")
    with pytest.raises(probe.ReportError, match=r"bad\.yaml"):
        probe.load(bad)
    monkeypatch.setenv("MEMPROBE_MAX_REPORT_BYTES", "100")
    with pytest.raises(probe.ReportError, match="limit"):
        probe.load("schema_version: 1\n" + "# padding\n" * 20)


def test_load_reads_a_file_named_dash_not_stdin(reports, tmp_path, monkeypatch):
    (tmp_path / "-").write_text(pathlib.Path(reports.path("plain")).read_text())
    monkeypatch.chdir(tmp_path)
    assert probe.load("-")["schema_version"] == 1


def test_load_refuses_other_types():
    with pytest.raises(probe.UsageError):
        probe.load(42)


# --------------------------------------------------------------------------- validate

def test_validate_lists_problems(reports):
    report = reports.get("plain")
    assert probe.validate(report) == []
    broken = json.loads(json.dumps(report))
    broken["probes"]["flip_rw_rx"]["outcome"] = "maybe"
    del broken["summary"]
    problems = probe.validate(broken)
    assert problems and all(isinstance(p, str) for p in problems)
    assert any("summary" in p for p in problems)
    assert any("flip_rw_rx" in p and "maybe" in p for p in problems)
    assert probe.validate([1, 2]) == ["a report is a mapping, this document is a list"]
    assert "schema_version 1" in probe.validate({"schema_version": 7})[0]


# --------------------------------------------------------------------------- check

PLAIN_EXPECTATIONS = {"nx": "enforced", "wx_flip": "works", "exec_rw": {"outcome": "crashed", "signal": "SIGSEGV"},
                      "map_rwx": ["allowed"]}


def test_check_holds_on_the_plain_host(reports):
    result = probe.check(reports.get("plain"), PLAIN_EXPECTATIONS)
    assert isinstance(result, probe.CheckResult)
    assert (result.outcome, result.exit_code, bool(result)) == ("holds", 0, True)
    assert [(line.key, line.kind, line.verdict) for line in result.lines] == [
        ("nx", "capability", "holds"), ("wx_flip", "capability", "holds"),
        ("exec_rw", "probe", "holds"), ("map_rwx", "probe", "holds")]
    assert all(isinstance(line, probe.CheckLine) for line in result.lines)
    assert str(result).splitlines()[0] == result.host
    assert str(result.lines[1]).startswith("ok        wx_flip: works  (found works")


def test_check_fails_under_mdwe_with_a_file_and_a_path(reports, tmp_path):
    expect = tmp_path / "expect.yaml"
    expect.write_text("wx_flip: works\ndual_mapping: works\nflip_rw_rx: {denied_by: mdwe}\n")
    result = probe.check(reports.path("mdwe"), str(expect))
    assert (result.outcome, result.exit_code, bool(result)) == ("fails", 2, False)
    assert [line.verdict for line in result.lines] == ["fails", "holds", "holds"]
    assert result.lines[0].found.startswith("blocked")
    assert "[mdwe]" in result.host
    assert str(result.lines[0]).startswith("FAIL      wx_flip: works")


def test_check_undecided_when_the_report_lacks_the_probe():
    report = probe.run(only=["map_rwx"])
    result = probe.check(report, {"map_rwx": "allowed", "flip_rw_rx": "allowed"})
    assert (result.outcome, result.exit_code) == ("undecided", 3)
    assert [line.verdict for line in result.lines] == ["holds", "undecided"]
    assert result.lines[1].found == "probe not in the report"


def test_check_refuses_typos_and_invalid_reports(reports, tmp_path):
    plain = reports.get("plain")
    with pytest.raises(probe.InputError, match="wx_flp"):
        probe.check(plain, {"wx_flp": "works"})
    with pytest.raises(probe.InputError, match="workz"):
        probe.check(plain, {"wx_flip": "workz"})
    with pytest.raises(probe.InputError, match="none given"):
        probe.check(plain, {})
    with pytest.raises(probe.InputError, match="not plain data"):
        probe.check(plain, {"wx_flip": object()})
    expect = tmp_path / "typo.yaml"
    expect.write_text("nx: enforced\n\nwx_flp: works\n")
    with pytest.raises(probe.InputError) as info:
        probe.check(plain, expect)
    assert str(info.value).startswith("%s:3:1: wx_flp: unknown" % expect)
    broken = dict(plain, probes="none")
    with pytest.raises(probe.ReportError, match="^report: "):
        probe.check(broken, PLAIN_EXPECTATIONS)
    with pytest.raises(probe.UsageError):
        probe.check(plain, ["wx_flip"])


# --------------------------------------------------------------------------- diff

def test_diff_same_and_different_reports(reports):
    plain, mdwe = reports.get("plain"), reports.path("mdwe")
    same = probe.diff(plain, reports.path("plain"))
    assert same == {"equal": True, "differences": [], "context": []}
    result = probe.diff(plain, mdwe)
    assert result["equal"] is False
    assert {"section": "capabilities", "key": "wx_flip", "a": "works", "b": "blocked"} in result["differences"]
    flip = [d for d in result["differences"] if d["key"] == "flip_rw_rx" and d.get("field") == "outcome"]
    assert flip == [{"section": "probes", "key": "flip_rw_rx", "field": "outcome", "a": "allowed", "b": "denied"}]
    assert any(c["key"] == "process.mdwe" for c in result["context"])
    json.dumps(result)   # plain data, ready for a program


def test_diff_refuses_an_invalid_report(reports):
    with pytest.raises(probe.ReportError, match="^b: "):
        probe.diff(reports.get("plain"), {"schema_version": 1})
    with pytest.raises(probe.InputError):
        probe.diff(reports.get("plain"), os.path.join(ROOT, "no-such-report.yaml"))
