"""probe.report.load: the one loader for untrusted reports, on real reports and hostile files."""

import os
import re

import pytest
import yaml

from probe.report import load as _load
from probe.report import yaml_doc
from probe.errors import InputError, ReportError

from helpers.collect_fixtures import HOSTILE, cli, real, real_yaml_run, write, write_bytes  # noqa: F401 (fixtures)


def test_real_yaml_report_loads_like_the_c_safe_loader(real):
    path = real.yaml("plain")
    with open(path, "rb") as f:
        data = f.read()
    assert _load.parse_document(data, path) == yaml.load(data, Loader=yaml.CSafeLoader)
    assert _load.load_report(path) == real.doc("plain")


def test_report_written_by_run_in_yaml_loads_and_validates(real_yaml_run):
    doc = _load.load_report(real_yaml_run)
    assert doc["schema_version"] == 1
    assert doc["probes"]["flip_rw_rx"]["outcome"] in ("allowed", "denied")


@pytest.mark.parametrize("name", ["plain", "mdwe", "seccomp"])
def test_real_json_reports_load(real, name):
    assert _load.load_report(real.json(name)) == real.doc(name)


def test_json_and_yaml_of_one_report_load_equal(real, tmp_path):
    doc = real.doc("mdwe")
    assert _load.load_report(write(tmp_path, "r.json", doc)) == _load.load_report(write(tmp_path, "r.yaml", doc))


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_document_gives_one_clean_line(tmp_path, name):
    path = write_bytes(tmp_path, "hostile.yaml", HOSTILE[name])
    with pytest.raises(ReportError) as info:
        _load.load_report(path)
    message = str(info.value)
    assert message.startswith(path + ":"), message
    assert "\n" not in message and "\x1b" not in message
    assert len(message) < 600


@pytest.mark.parametrize("name,needle", [
    ("python-object", "tag !!python/object/apply:os.system is not allowed"),  # needles are regexes
    ("billion-laughs", r"aliases \(\*name\) are not allowed"),
    ("recursive-alias", "aliases"),
    ("merge-key", "merge keys"),
    ("deep-flow", "nested deeper than 64 levels|exceeded maximum nesting depth"),  # newer libyaml stops at 1000
    ("deep-block", "nested deeper than 64 levels"),
    ("deep-json", "nested deeper than 64 levels"),
    ("dup-key", "duplicate key 'schema_version'"),
    ("int-key", "not a string"),
    ("nan", "non-finite number"),
    ("huge-int", "too long"),
    ("latin1", "a report is UTF-8 text"),
    ("unknown-version", "schema_version 99 is not supported; this memprobe reads schema_version 1"),
    ("string-version", "schema_version '1' is not supported"),
    ("bool-version", "schema_version True is not supported"),
    ("list-doc", "a report is a mapping, this document is a list"),
    ("empty", "empty document"),
])
def test_hostile_document_says_what_is_wrong(tmp_path, name, needle):
    path = write_bytes(tmp_path, "h.yaml", HOSTILE[name])
    with pytest.raises(ReportError, match=None) as info:
        _load.load_report(path)
    assert re.search(needle, str(info.value)), str(info.value)


def test_yaml_errors_name_the_line(tmp_path):
    path = write_bytes(tmp_path, "r.yaml", b"schema_version: 1\nhost:\n  os: linux\n  x: !!python/object:os.system {}\n")
    with pytest.raises(ReportError, match=r"r\.yaml:4:6: tag !!python/object:os.system"):
        _load.load_report(path)


def test_schema_problem_names_the_line_of_the_key(real, tmp_path):
    text = open(real.yaml("plain"), encoding="utf-8").read()
    lines = text.splitlines()
    index = next(i for i, line in enumerate(lines) if line.strip().startswith("pointer_bits: "))
    lines[index] = lines[index].split(":")[0] + ": 'sixty-four'"
    path = tmp_path / "r.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ReportError) as info:
        _load.load_report(str(path))
    assert str(info.value).startswith("%s:%d:3: $.host.pointer_bits:" % (path, index + 1)), str(info.value)


def test_size_limit_default_env_and_parameter(real, tmp_path, monkeypatch):
    path = real.yaml("plain")
    size = os.path.getsize(path)
    assert _load.load_report(path)
    with pytest.raises(ReportError, match="above the %d-byte limit" % (size - 1)):
        _load.load_report(path, max_bytes=size - 1)
    monkeypatch.setenv("MEMPROBE_MAX_REPORT_BYTES", str(size - 1))
    with pytest.raises(ReportError, match="MEMPROBE_MAX_REPORT_BYTES"):
        _load.load_report(path)
    monkeypatch.delenv("MEMPROBE_MAX_REPORT_BYTES")
    big = write_bytes(tmp_path, "big.yaml", b"# " + b"x" * _load.DEFAULT_MAX_BYTES + b"\nschema_version: 1\n")
    with pytest.raises(ReportError, match="limit"):
        _load.load_report(big)


def test_size_limit_holds_for_files_that_do_not_say_their_size(tmp_path):
    # A FIFO reports size 0: the read itself must stop at the limit.
    fifo = str(tmp_path / "fifo.yaml")
    os.mkfifo(fifo)
    pid = os.fork()
    if pid == 0:  # writer: more than the limit, then exit
        try:
            with open(fifo, "wb") as f:
                f.write(b"#" * 5000)
        finally:
            os._exit(0)
    try:
        with pytest.raises(ReportError, match="more than 4000 bytes"):
            _load.read_bytes(fifo, max_bytes=4000)
    finally:
        os.waitpid(pid, 0)


def test_unreadable_inputs_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        _load.load_report(str(tmp_path / "missing.yaml"))
    with pytest.raises(InputError, match="is a directory"):
        _load.load_report(str(tmp_path))


def test_unquoted_timestamp_stays_text():
    doc = _load.parse_document(b"generated_at: 2026-11-27T02:30:00Z\nday: 2026-11-27\n", "x")
    assert doc == {"generated_at": "2026-11-27T02:30:00Z", "day": "2026-11-27"}


def test_json_rules_match_yaml_rules():
    for data, needle in ((b'{"a": 1, "a": 2}', "duplicate key"), (b'{"a": 1e999}', "not finite"),
                         (b'{"a": ' + b"1" * 200 + b"}", "too long")):
        with pytest.raises(ReportError, match=needle):
            _load.parse_document(data, "x.json", fmt="json")


def test_pure_python_yaml_fallback_is_as_strict(monkeypatch):
    """PyYAML without libyaml takes another code path: it must refuse the same things."""
    NodeParser, EventParser = yaml_doc.pure_python_classes()
    monkeypatch.setattr(yaml_doc, "_YAML_CLASSES", (NodeParser, EventParser, yaml))
    assert _load.parse_document(b"a: [1, 2.5, x, null, true]\n", "x") == {"a": [1, 2.5, "x", None, True]}
    for name in ("python-object", "billion-laughs", "deep-flow", "deep-block", "dup-key", "latin1", "nul",
                 "binary-garbage", "truncated", "merge-key"):
        with pytest.raises(ReportError):
            _load.parse_document(HOSTILE[name], name)


def test_clean_escapes_terminal_control():
    assert _load.clean("a\x1b[31mb\nc\u202ed") == "a\\x1b[31mb\\x0ac\\u202ed"
    assert len(_load.clean("x" * 500)) == 200


def test_locator_handles_paths_it_cannot_find():
    locate = _load.Locator(b"a:\n  b: [1, 2]\n")
    assert locate("$.a.b[1]: bad") == "2:10"
    assert locate("$.a.zzz: bad") == "1:1"  # the nearest key that exists
    assert locate("no path here") is None
    assert _load.Locator(b'{"a": 1}')("$.a: bad") is None


def test_deep_document_through_the_cli_exits_1_with_one_line(tmp_path):
    """libyaml's composer recurses in C: without the pre-screen this kills the interpreter."""
    path = write_bytes(tmp_path, "deep.yaml", HOSTILE["deep-flow"])
    status, out, err = cli("validate", path)
    assert status == 1, err
    assert re.search("nested deeper than 64 levels|exceeded maximum nesting depth", out), out
    assert err == ""
    status, out, err = cli("show", path)
    assert status == 1
    assert err.count("\n") == 1 and "Traceback" not in err
