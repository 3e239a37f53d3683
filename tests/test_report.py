"""Report building, summary wording, serialisation, atomic writes, the schema validator."""

import copy
import os

import pytest
import yaml

from probe.report import build as _report
from probe.report import validator as _schema
from probe.errors import InputError


def verdict(outcome, **kw):
    v = {"outcome": outcome, "step": kw.pop("step", "call"), "errno": None, "errno_name": None,
         "signal": None, "signal_number": None, "value": None, "expected": 23,
         "exec_dropped": False, "duration_ms": 1.0, "detail": "x", "steps": []}
    v.update(kw)
    return v


def test_summary_words():
    probes = {
        "exec_rw": verdict("crashed", signal="SIGSEGV"),
        "flip_rw_rx": verdict("denied", step="mprotect_rx", errno=13, errno_name="EACCES"),
        "map_rwx": verdict("allowed", value=23),
        "dual_map_memfd": verdict("allowed", value=23),
        "dual_map_shm": verdict("denied", step="mmap_rx_view", errno=1, errno_name="EPERM"),
        "dual_map_file": verdict("skipped", detail="no tmp"),
        "repatch_rx": verdict("wrong_result", value=23, expected=42),
        "exec_heap": verdict("allowed", value=23),
    }
    s = _report.summarise(probes)
    assert s["nx"] == {"state": "enforced",
                       "text": "NX enforced: code in plain RW memory crashes (SIGSEGV)"}
    assert s["heap_nx"]["state"] == "not_enforced"
    assert s["wx_flip"] == {"state": "blocked", "text": "W->X flip (mmap RW, write, mprotect RX) "
                            "blocked: mprotect_rx refused with EACCES"}
    assert s["rwx_mapping"]["state"] == "works"
    assert s["dual_mapping"]["state"] == "works"
    assert "via memfd" in s["dual_mapping"]["text"]
    assert "shm (mmap_rx_view refused with EPERM)" in s["dual_mapping"]["text"]
    assert s["code_repatching"]["state"] == "broken"
    assert "stack_nx" not in s      # not probed: not summarised


def test_dual_mapping_blocked_only_when_no_variant_works():
    probes = {"dual_map_memfd": verdict("crashed", signal="SIGSYS", step="mmap_rx_view"),
              "dual_map_shm": verdict("skipped")}
    assert _report.summarise(probes)["dual_mapping"]["state"] == "blocked"
    probes = {"dual_map_memfd": verdict("skipped"), "dual_map_shm": verdict("error")}
    assert _report.summarise(probes)["dual_mapping"]["state"] == "unknown"


def _report_dict():
    probes = {"map_rx": verdict("allowed", expected=None, step="mmap_rx")}
    meas = {"flip_cycle_ns": {"outcome": "skipped", "median_ns": None, "cycles": None,
                              "detail": "flip_rw_rx was not run"}}
    return _report.build_report("x86_64", probes, meas, "fork", 10.0)


def test_built_report_is_valid_and_ordered():
    r = _report_dict()
    assert _schema.validate(r) == []
    assert list(r) == ["schema_version", "tool", "generated_at", "host", "process", "probes",
                       "measurements", "summary"]
    text = _report.dumps(r)
    assert text == _report.dumps(copy.deepcopy(r))
    assert list(yaml.safe_load(text)) == list(r)
    assert yaml.safe_load(_report.dumps(r, "json")) == r


def test_default_path_is_safe_for_any_hostname():
    r = _report_dict()
    r["host"]["hostname"] = "../../etc/pass wd"
    path = _report.default_path(r)
    assert os.path.dirname(path) == "reports"
    assert "/" not in os.path.basename(path) and " " not in path


def test_write_atomic_replaces_whole_files(tmp_path):
    target = tmp_path / "r.yaml"
    _report.write_atomic(str(target), "old\n")
    _report.write_atomic(str(target), "new\n")
    assert target.read_text() == "new\n"
    assert os.listdir(tmp_path) == ["r.yaml"]


def test_write_atomic_failure_keeps_the_old_file_and_no_temp(tmp_path):
    (tmp_path / "dir.yaml").mkdir()              # rename onto a directory fails
    with pytest.raises(InputError, match="cannot write"):
        _report.write_atomic(str(tmp_path / "dir.yaml"), "x")
    assert os.listdir(tmp_path) == ["dir.yaml"]
    with pytest.raises(InputError):
        _report.write_atomic("/proc/self/nope/r.yaml", "x")


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r.pop("probes"), "missing key 'probes'"),
    (lambda r: r.__setitem__("schema_version", 2), "must be 1"),
    (lambda r: r["host"].__setitem__("pointer_bits", "64"), "expected integer"),
    (lambda r: r["probes"]["map_rx"].__setitem__("outcome", "fine"), "is not one of"),
    (lambda r: r["probes"].__setitem__("Bad Id", {}), "unexpected key"),
    (lambda r: r.__setitem__("extra", 1), "unexpected key 'extra'"),
    (lambda r: r["summary"]["rx_mapping"].__setitem__("text", ""), "must not be empty"),
    (lambda r: r.__setitem__("generated_at", "yesterday"), "does not match"),
    (lambda r: r["host"].__setitem__("page_size", True), "expected integer, got bool"),
    # null stands for "not root" in a redacted report; a bool is still no uid
    (lambda r: r["process"].__setitem__("uid", True), "expected integer or null, got bool"),
    (lambda r: r.__setitem__("redacted", {"hostname_key": "guess", "changed": []}), "is not one of"),
])
def test_validator_names_the_problem(mutate, message):
    r = _report_dict()
    mutate(r)
    problems = _schema.validate(r)
    assert problems and any(message in p for p in problems), problems


def test_validator_accepts_all_outcomes_in_the_schema():
    schema = _schema.load_schema(1)
    assert schema["$defs"]["verdict"]["properties"]["outcome"]["enum"] == [
        "allowed", "denied", "crashed", "killed", "timeout", "wrong_result", "skipped", "error"]
