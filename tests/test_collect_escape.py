"""Nothing from a file reaches a terminal, a log or a JUnit file raw: every command's text,
Markdown, CSV, HTML, JSON, YAML and JUnit output escapes ESC, C0, C1, bidi controls,
U+2028/2029 and newlines taken from a report or an expectations file; patterns match whole
strings; a lone surrogate is refused by the loader."""

import copy
import json
import xml.etree.ElementTree as ET

import pytest
import yaml

from probe.report import load as _load
from probe.commands import check

from helpers.collect_fixtures import cli, real, variant, with_attribution, write, write_bytes  # noqa: F401

# ESC (a screen clear), BEL, CR, C1 NEL and CSI, right-to-left override, the other bidi
# controls, line and paragraph separators, and a newline that would start a forged line.
HOSTILE = "\x1b[2J\x07\r\x85\x9b\u202e\u2066\u200f\u2028\u2029\nFORGED ok"
RAW = set("\x1b\x07\r\x85\x9b\u202e\u2066\u200f\u2028\u2029")


def _raw_in(text):
    """Control, bidi or separator characters in output text (newlines apart)."""
    return {c for c in text if c != "\n" and (c in RAW or not c.isprintable())}


def _forged(text):
    return [line for line in text.splitlines() if line.lstrip().startswith("FORGED")]


def _assert_clean_text(text, what):
    assert not _raw_in(text), (what, _raw_in(text))
    assert not _forged(text), (what, _forged(text))


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _assert_clean_data(data, what):
    """Decoded JSON / YAML: escapes such as \\u202e must not carry the character through."""
    for s in _strings(data):
        assert "\n" not in s and not _raw_in(s), (what, s)


def _poison(report):
    """The report with HOSTILE appended to every string (and key) the schema lets vary."""
    doc = copy.deepcopy(report)
    changed = []

    def valid():
        return not _load.report_problems(doc)

    def walk(node, path):
        items = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        for key, value in items:
            if isinstance(value, str):
                node[key] = value + HOSTILE
                if valid():
                    changed.append(path + [key])
                else:
                    node[key] = value
            elif isinstance(value, (dict, list)):
                walk(value, path + [key])
            if isinstance(node, dict) and path and isinstance(key, str):
                new = key + HOSTILE
                node[new] = node.pop(key)
                if valid():
                    changed.append(path + [new])
                else:
                    node[key] = node.pop(new)
    walk(doc, [])
    return doc, changed


@pytest.fixture(scope="module")
def hostile(real, tmp_path_factory):
    doc, changed = _poison(with_attribution(real.doc("mdwe")))
    fields = {tuple(p[:2]) for p in changed}
    # what the commands print: the host line, summary sentences, probe details, attribution
    assert ("host", "hostname") in fields and ("host", "kernel_release") in fields
    assert any(p[0] == "summary" and p[-1] == "text" for p in changed)
    assert any(p[0] == "probes" and "evidence" in p for p in changed)
    d = tmp_path_factory.mktemp("hostile")
    return {"doc": doc, "yaml": write(d, "hostile.yaml", doc), "json": write(d, "hostile.json", doc),
            "dir": str(d)}


@pytest.mark.parametrize("args", [("show",), ("validate",), ("diff", "OTHER"), ("matrix",),
                                  ("matrix", "-f", "csv"), ("matrix", "-f", "html")])
def test_text_outputs_escape_everything_from_the_report(hostile, real, args):
    other = real.json("plain")
    argv = [a if a != "OTHER" else other for a in args] + [hostile["yaml"]]
    if args[0] == "matrix":
        argv[1:1] = ["--jobs", "1"]
    status, out, err = cli(*argv)
    assert status in (0, 1, 2), err
    assert out
    _assert_clean_text(out, args)
    _assert_clean_text(err, args)


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_diff_machine_output_escapes_values_and_keys(hostile, real, fmt):
    status, out, err = cli("diff", "-f", fmt, real.json("plain"), hostile["json"])
    assert status == 2, err
    _assert_clean_text(out, fmt)
    data = json.loads(out) if fmt == "json" else yaml.safe_load(out)
    _assert_clean_data(data, fmt)
    shown = json.dumps(data)
    assert "\\\\x1b[2J" in shown and "\\\\u202e" in shown  # escaped, visibly: not dropped


def test_matrix_json_escapes_values(hostile):
    status, out, err = cli("matrix", "-f", "json", hostile["json"])
    assert status == 0, err
    _assert_clean_text(out, "matrix json")
    data = json.loads(out)
    _assert_clean_data(data, "matrix json")
    assert "\\x1b[2J" in data["hosts"][0]["hostname"]


def test_check_text_and_junit_escape_report_and_expectation_values(hostile, tmp_path):
    expect = tmp_path / "expect.yaml"
    expect.write_text(json.dumps({
        "flip_rw_rx": {"outcome": "denied", "step": "mprotect_rx" + HOSTILE, "denied_by": "mdwe" + HOSTILE},
        "map_rwx": {"step": ["mmap" + HOSTILE, "x\u2028FORGED"]},
        "wx_flip": "blocked",
    }))
    junit = tmp_path / "check.xml"
    status, out, err = cli("check", "-e", expect, hostile["json"], "--junit", junit)
    assert status == 2, err
    _assert_clean_text(out, "check")
    _assert_clean_text(err, "check stderr")
    assert "mprotect_rx\\x1b[2J" in out  # shown, escaped
    assert sum(line.startswith(("ok ", "FAIL ", "UNDECIDED ")) for line in out.splitlines()) == 3
    root = ET.parse(str(junit)).getroot()
    for element in root.iter():
        for name, value in element.attrib.items():
            assert "\n" not in value and not _raw_in(value), (element.tag, name, value)
        _assert_clean_text(element.text or "", element.tag)
    names = [c.get("name") for c in root.iter("testcase")]
    assert len(names) == 3 and "denied_by mdwe\\x1b[2j" in names[0]  # mechanism names are lower-cased


def test_run_junit_escapes_details(hostile):
    from probe.render import junit as _junit

    doc = copy.deepcopy(hostile["doc"])
    for result in doc["probes"].values():
        result["detail"] = "detail" + HOSTILE
    root = ET.fromstring(_junit.run_junit(doc).encode("utf-8"))
    for element in root.iter():
        for value in element.attrib.values():
            assert "\n" not in value and not _raw_in(value), value
        _assert_clean_text(element.text or "", element.tag)


def test_expectation_key_errors_are_escaped(real, tmp_path):
    path = write_bytes(tmp_path, "e.yaml", b'"nx\\e[2J\\nFORGED": enforced\n')
    status, out, err = cli("check", "-e", path, real.json("plain"))
    assert status == 1 and out == ""
    assert len(err.splitlines()) == 1 and "\\x1b[2J\\x0aFORGED" in err
    _assert_clean_text(err, "stderr")


# --------------------------------------------------------------------------- whole strings

@pytest.mark.parametrize("spec", [
    {"flip_rw_rx": {"errno": "EACCES\n"}},
    {"exec_rw": {"signal": "SIGSEGV\n"}},
    {"nx\n": "enforced"},
    {"probes": {"map_rwx\n": "allowed"}},
])
def test_expectation_patterns_match_whole_strings(spec):
    expectations, problems = check.parse_expectations(spec)
    assert problems and not expectations, problems


def test_schema_patterns_match_whole_strings(real):
    doc = real.doc("plain")
    doc["summary"]["wx_flip\n"] = doc["summary"].pop("wx_flip")
    assert any("wx_flip" in p for p in _load.report_problems(doc))
    doc = real.doc("plain")
    doc["generated_at"] += "\n"
    assert any(p.startswith("$.generated_at") for p in _load.report_problems(doc))
    assert _load.report_problems(real.doc("plain")) == []


# --------------------------------------------------------------------------- lone surrogates

@pytest.mark.parametrize("args", [("show",), ("validate",), ("matrix",), ("diff", "-f", "json", "PLAIN"),
                                  ("diff", "-f", "yaml", "PLAIN"), ("diff", "PLAIN"),
                                  ("check", "-e", "EXPECT")])
def test_a_lone_surrogate_in_a_json_report_is_refused_in_one_line(real, tmp_path, args):
    doc = variant(real.doc("plain"), hostname="host\ud800name")
    path = tmp_path / "surrogate.json"
    path.write_text(json.dumps(doc))  # ensure_ascii: the surrogate travels as \ud800
    expect = write_bytes(tmp_path, "e.yaml", b"nx: enforced\n")
    argv = [{"PLAIN": real.json("plain"), "EXPECT": expect}.get(a, a) for a in args] + [path]
    status, out, err = cli(*argv)
    assert status == 1, err
    shown = out if args[0] == "validate" else err  # validate prints its findings on stdout
    assert "lone UTF-16 surrogate" in shown and "internal error" not in out + err
    lines = shown.splitlines()
    assert len(lines) == (2 if args[0] == "matrix" else 1), err  # matrix: the skip, then nothing usable


def test_a_surrogate_pair_is_text(real, tmp_path):
    doc = variant(real.doc("plain"), hostname="host\U0001f600")
    path = tmp_path / "emoji.json"
    path.write_text(json.dumps(doc))  # \ud83d\ude00: a valid pair
    assert _load.load_report(str(path))["host"]["hostname"] == "host\U0001f600"
