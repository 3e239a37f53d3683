"""memprobe show / validate / diff on real reports of this machine."""

import json

import pytest
import yaml

from probe.commands import diff
from probe.commands import show
from probe.render.text import Palette

from helpers.collect_fixtures import (HOSTILE, cli, real, variant, with_attribution, write,  # noqa: F401
                                      write_bytes)


# --------------------------------------------------------------------------- show

def test_show_plain_report(real):
    status, out, err = cli("show", real.yaml("plain"))
    assert status == 0, err
    doc = real.doc("plain")
    lines = out.splitlines()
    host = doc["host"]
    assert lines[0].startswith("%s/%s/%s/%s" % (host["os"], host["arch"], host["kernel_release"], host["hostname"]))
    assert "\x1b[" not in out  # not a terminal: no colour
    for cap, entry in doc["summary"].items():
        assert any(line.split()[:2] == [cap, entry["state"]] for line in lines), cap
    exec_rw = next(line for line in lines if line.split()[:1] == ["exec_rw"])
    assert exec_rw.split()[1] == doc["probes"]["exec_rw"]["outcome"]
    if doc["probes"]["exec_rw"]["outcome"] == "crashed":
        assert "%s at %s" % (doc["probes"]["exec_rw"]["signal"], doc["probes"]["exec_rw"]["step"]) in exec_rw


@pytest.mark.parametrize("name,errno", [("mdwe", "EACCES"), ("seccomp", "EPERM")])
def test_show_confined_reports_give_errno_and_step(real, name, errno):
    status, out, _ = cli("show", real.json(name))
    assert status == 0
    assert out.splitlines()[0].split("  ")[0].endswith("[%s]" % name)
    flip = real.doc(name)["probes"]["flip_rw_rx"]
    assert flip["outcome"] == "denied" and flip["errno_name"] == errno
    line = next(line for line in out.splitlines() if line.split()[:1] == ["flip_rw_rx"])
    assert "denied" in line and "%s (%d) at %s" % (errno, flip["errno"], flip["step"]) in line


def test_show_colours_only_when_asked_or_on_a_terminal(real, monkeypatch):
    doc = real.doc("mdwe")
    coloured = show.render(doc, Palette(True))
    assert "\x1b[31mblocked" in coloured and "\x1b[32menforced" in coloured
    assert "\x1b[" not in show.render(doc, Palette(False))

    class Tty:
        def isatty(self):
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert Palette.for_stream(Tty()).enabled
    monkeypatch.setenv("NO_COLOR", "1")
    assert not Palette.for_stream(Tty()).enabled
    assert Palette.for_stream(Tty(), "always").enabled
    status, out, _ = cli("show", "--colour", "always", real.json("plain"), env={"NO_COLOR": ""})
    assert status == 0 and "\x1b[" in out


def test_show_renders_attribution_strategies_and_recommendation(real):
    doc = with_attribution(real.doc("mdwe"))
    text = show.render(doc)
    flip = doc["probes"]["flip_rw_rx"]["attribution"][0]
    assert "-> %s (%s): " % (flip["mechanism"], flip["confidence"]) in text
    assert "Strategies" in text and "Recommendation: " in text
    for name, entry in doc["strategies"].items():
        line = next(line for line in text.splitlines() if line.split()[:1] == [name])
        assert line.split()[1] == entry["verdict"]


def test_show_tolerates_unknown_shapes_of_new_sections(real):
    doc = real.doc("plain")
    doc["policies"] = {"pax": {"flags": "PeMRs", "notes": ["a", {"b": [1, 2]}]}, "selinux": None}
    doc["strategies"] = ["free", "form"]
    doc["recommendation"] = {"use": "wx_flip"}
    text = show.render(doc)
    assert "Policies" in text and "flags: PeMRs" in text and "use: wx_flip" in text


def test_show_escapes_hostile_strings(real, tmp_path):
    doc = real.doc("plain")
    doc["host"]["hostname"] = "evil\x1b]0;pwned\x07\nFAKE LINE"
    doc["probes"]["exec_rw"]["detail"] = "\x1b[2J cleared"
    path = write(tmp_path, "evil.json", doc)
    status, out, err = cli("show", path)
    assert status == 0, err
    assert "\x1b" not in out and "\x07" not in out
    assert "evil\\x1b]0;pwned\\x07\\x0aFAKE LINE" in out
    assert not any(line.startswith("FAKE LINE") for line in out.splitlines())


@pytest.mark.parametrize("name", ["python-object", "billion-laughs", "deep-flow", "binary-garbage"])
def test_show_refuses_hostile_files_in_one_line(tmp_path, name):
    path = write_bytes(tmp_path, "h.yaml", HOSTILE[name])
    status, out, err = cli("show", path)
    assert (status, out) == (1, "")
    assert err.startswith("memprobe: error: %s:" % path) and err.count("\n") == 1


# --------------------------------------------------------------------------- validate

def test_validate_real_reports(real):
    status, out, err = cli("validate", real.yaml("plain"), real.json("mdwe"), real.json("seccomp"))
    assert status == 0, out + err
    assert out.splitlines() == ["%s: ok" % p for p in (real.yaml("plain"), real.json("mdwe"), real.json("seccomp"))]


def test_validate_prints_each_problem_with_its_line(real, tmp_path):
    text = open(real.yaml("plain"), encoding="utf-8").read()
    bad = text.replace("outcome: allowed", "outcome: permitted", 2).replace("byte_order: little", "byte_order: 7")
    path = tmp_path / "bad.yaml"
    path.write_text(bad)
    hostile = write_bytes(tmp_path, "hostile.yaml", HOSTILE["python-object"])
    status, out, err = cli("validate", real.yaml("plain"), str(path), hostile, str(tmp_path / "missing.yaml"))
    assert status == 1 and err == ""
    lines = out.splitlines()
    assert lines[0] == "%s: ok" % real.yaml("plain")
    bad_lines = [line for line in lines if line.startswith(str(path))]
    assert len(bad_lines) == 3, lines
    for line in bad_lines:
        lineno = int(line[len(str(path)) + 1:].split(":")[0])
        key = line.split(": ")[1].rsplit(".", 1)[-1]  # 'FILE:L:C: $.probes.map_rwx.outcome: ...' -> 'outcome'
        assert bad.splitlines()[lineno - 1].strip().startswith(key + ":"), line
    assert any("$.host.byte_order" in line for line in bad_lines)
    assert any(line.startswith(hostile + ":2:7: tag !!python/object/apply") for line in lines)
    assert any("missing.yaml: cannot read" in line for line in lines)


def test_validate_quiet_prints_only_problems(real):
    status, out, _ = cli("validate", "-q", real.json("plain"))
    assert (status, out) == (0, "")


# --------------------------------------------------------------------------- diff

def test_diff_of_a_report_with_itself_is_empty(real):
    status, out, _ = cli("diff", real.yaml("plain"), real.json("plain"))
    assert status == 0
    assert out.splitlines()[-1].startswith("no differences")


def test_diff_plain_vs_mdwe(real):
    plain, mdwe = real.doc("plain"), real.doc("mdwe")
    status, out, _ = cli("diff", real.json("plain"), real.json("mdwe"))
    assert status == 2
    assert "process.mdwe: 0 -> 1" in out
    assert "  wx_flip: works -> blocked" in out
    flip = mdwe["probes"]["flip_rw_rx"]
    assert "flip_rw_rx: allowed returned 23 -> denied %s (%d) at %s" % (
        flip["errno_name"], flip["errno"], flip["step"]) in out
    assert "  exec_rw:" not in out  # crashed with SIGSEGV in both
    changed_caps = [c for c in plain["summary"] if plain["summary"][c]["state"] != mdwe["summary"][c]["state"]]
    assert ("differ in %d capabilities" % len(changed_caps)) in out


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_diff_machine_formats(real, fmt):
    status, out, _ = cli("diff", "--format", fmt, real.json("mdwe"), real.json("seccomp"))
    assert status == 2
    data = json.loads(out) if fmt == "json" else yaml.safe_load(out)
    assert data["equal"] is False
    errnos = [d for d in data["differences"] if d["section"] == "probes" and d["key"] == "flip_rw_rx"]
    assert {"section": "probes", "key": "flip_rw_rx", "field": "errno_name", "a": "EACCES", "b": "EPERM"} in errnos
    assert {"key": "process.mdwe", "a": 1, "b": 0} in data["context"]


def test_diff_ignores_times_durations_numbers_and_details(real):
    a = real.doc("plain")
    b = variant(a, generated_at="2030-01-01T00:00:00Z")
    for result in b["probes"].values():
        result["duration_ms"] = result["duration_ms"] + 5
        result["detail"] = "other words"
    for entry in b["measurements"].values():
        for key, value in list(entry.items()):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                entry[key] = value * 2 + 1
    b["tool"]["version"] = "9.9.9"
    assert diff.compare(a, b) == {"equal": True, "differences": [], "context": []}


def test_diff_reports_probe_and_attribution_changes(real):
    a = with_attribution(real.doc("mdwe"))
    b = with_attribution(real.doc("seccomp"))
    result = diff.compare(a, b)
    fields = {(d["key"], d.get("field")) for d in result["differences"] if d["section"] == "probes"}
    assert ("flip_rw_rx", "attribution") in fields
    assert any(d["section"] == "strategies" for d in result["differences"])
    c = variant(a, outcomes={"map_rx": ("wrong_result",)})
    result = diff.compare(a, c)
    assert {"section": "probes", "key": "map_rx", "field": "outcome", "a": a["probes"]["map_rx"]["outcome"],
            "b": "wrong_result"} in result["differences"]


def test_diff_probe_missing_on_one_side(real):
    a = real.doc("plain")
    b = real.doc("plain")
    del b["probes"]["read_implies_exec"]
    result = diff.compare(a, b)
    assert {"section": "probes", "key": "read_implies_exec", "field": "outcome", "a": "allowed"} in \
        result["differences"]
    text = diff.render_text(dict(result, a={"file": "a", "host": "A"}, b={"file": "b", "host": "B"}), a, b,
                            Palette(False))
    assert "read_implies_exec: allowed returned 23 -> (absent)" in text


def test_diff_writes_output_file(real, tmp_path):
    out = tmp_path / "d.json"
    status, stdout, _ = cli("diff", "-f", "json", "-o", out, real.json("plain"), real.json("plain"))
    assert status == 0 and stdout == ""
    assert json.loads(out.read_text())["equal"] is True


def test_diff_bad_input_exits_1(real, tmp_path):
    path = write_bytes(tmp_path, "h.yaml", HOSTILE["billion-laughs"])
    status, out, err = cli("diff", real.json("plain"), path)
    assert (status, out) == (1, "")
    assert "aliases" in err and err.count("\n") == 1


def test_diff_of_policies_and_strategies_skips_their_sentences(real):
    a, b = real.doc("plain"), real.doc("mdwe")
    assert "strategies" in a and "strategies" in b
    result = diff.compare(a, b)
    keys = [(d["section"], d["key"]) for d in result["differences"]]
    assert ("strategies", "wx_flip.verdict") in keys and ("policies", "mdwe.state") in keys
    assert not any(k.endswith((".detail", ".text")) for _, k in keys)
    assert ("recommendation", "recommendation") in keys
    text = diff.render_text(dict(result, a={"file": "a", "host": "A"}, b={"file": "b", "host": "B"}), a, b,
                            Palette(False))
    assert "1 recommendation" in text.splitlines()[-1]
