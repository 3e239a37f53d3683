"""memprobe's own YAML emitter (probe.report.yaml_emit): whatever it writes reads back as
the same data under PyYAML (pure and libyaml loaders, YAML 1.1), ruamel.yaml (YAML 1.2) and
memprobe's own hardened report loader; plain scalars stay plain where that is safe."""

import glob
import json
import math
import os

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probe.report import build as _report
from probe.report import load as _load
from probe.report.yaml_emit import emit, is_plain, scalar
from conftest import ROOT

try:   # the YAML 1.2 reader: tox installs it; Debian's chroot suites may lack it
    import ruamel.yaml as ruamel_yaml
except ImportError:
    ruamel_yaml = None
needs_yaml12 = pytest.mark.skipif(ruamel_yaml is None, reason="ruamel.yaml (a YAML 1.2 reader) is not installed")

SETTINGS = settings(max_examples=int(os.environ.get("MEMPROBE_FUZZ_EXAMPLES", "60")) * 5, deadline=None,
                    derandomize=bool(os.environ.get("CI")),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

PYYAML_LOADERS = [yaml.SafeLoader] + ([yaml.CSafeLoader] if hasattr(yaml, "CSafeLoader") else [])


def yaml12_load(text):
    return ruamel_yaml.YAML(typ="safe", pure=True).load(text)


def all_loads(text):
    """`text` read by every YAML reader at hand: [(reader's name, data)]."""
    loaded = [(loader.__name__, yaml.load(text, Loader=loader)) for loader in PYYAML_LOADERS]
    if ruamel_yaml is not None:
        loaded.append(("ruamel.yaml (YAML 1.2)", yaml12_load(text)))
    return loaded


def same(a, b):
    """Equal data of equal types (True is not 1), NaN equal to NaN and -0.0 apart from 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[key], b[key]) for key in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def assert_round_trips(data, ascii_only=False):
    text = emit(data, ascii_only=ascii_only)
    assert text.endswith("\n")
    if ascii_only:
        assert text.isascii(), text
    for reader, loaded in all_loads(text):
        assert same(loaded, data), (reader, text, loaded)


# ------------------------------------------------------------------ strategies

# Pieces of text that YAML resolvers and scanners give a meaning to, joined at random so
# the plain/quoted decision meets bools, numbers, dates, indicators and breaks.
FRAGMENTS = ["yes", "No", "ON", "y", "n", "~", "null", "true", "0x", "0o", "0b", "1", "07", "_", ":",
             " ", "  ", "#", "-", "+", ".", "e", "E", "5", "inf", "nan", ".inf", "2026-11-30", "T", "Z",
             "a", "z", "/", "=", "<<", "&", "*", "!", "|", ">", "'", '"', "%", "@", "`", ",", "[", "]",
             "{", "}", "?", "\t", "\n", "\r", "\x85", "\u2028", "\ufeff", "é", "\x00", "\x7f", "\\"]
fragment_text = st.lists(st.sampled_from(FRAGMENTS), max_size=6).map("".join)
any_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
texts = fragment_text | any_text

huge_int = st.integers(min_value=-(10 ** 400), max_value=10 ** 400)
scalars = (st.none() | st.booleans() | st.integers() | huge_int | texts
           | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from([1e-05, 5e-324, 1.7976931348623157e308, -0.0, 1e16, 123456789012345678.0]))
trees = st.recursive(scalars, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(texts, kids, max_size=4),
                     max_leaves=25)

finite_scalars = (st.none() | st.booleans() | st.integers(min_value=-(10 ** 30), max_value=10 ** 30) | texts
                  | st.floats(allow_nan=False, allow_infinity=False))
report_like = st.dictionaries(texts, st.recursive(
    finite_scalars, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(texts, kids, max_size=4),
    max_leaves=25), max_size=5)


# ------------------------------------------------------------------ properties

@pytest.mark.slow
@SETTINGS
@given(trees)
def test_any_tree_round_trips(data):
    assert_round_trips(data)


@pytest.mark.slow
@SETTINGS
@given(trees)
def test_ascii_only_output_is_ascii_and_round_trips(data):
    assert_round_trips(data, ascii_only=True)


@pytest.mark.slow
@SETTINGS
@given(report_like)
def test_hardened_loader_reads_emitted_documents(data):
    for ascii_only in (False, True):
        text = emit(data, ascii_only=ascii_only)
        assert same(_load.parse_document(text.encode("utf-8"), "emitted.yaml"), data), text


@pytest.mark.slow
@SETTINGS
@given(texts)
def test_plain_strings_are_strings_to_every_reader(text):
    """Where the emitter writes a string plain, every reader must see that string."""
    if not is_plain(text):
        assert scalar(text)[0] == '"'
        return
    assert scalar(text) == text
    for reader, loaded in all_loads("k: %s\n" % text):
        assert loaded == {"k": text}, reader


# ------------------------------------------------------------------ tricky strings

TRICKY = ["yes", "No", "~", "null", "Null", "NULL", "y", "Y", "n", "on", "Off", "TRUE", "false",
          "0x1f", "0o17", "0b101", "017", "1_000", "1:20", "190:20:30", "2026-11-30",
          "2026-11-30T12:00:00Z", "1e5", "1.0", ".5", "+1", "-1", ".inf", "-.inf", ".NaN", "-", "- a",
          "a: b", "a:", "a #b", "#x", "'", '"', "@x", "`x", "%x", "!x", "&x", "*x", "|", ">", "?", "? a",
          "[a]", "{a}", ",", " lead", "trail ", "in  side", "\t", "\n", "a\nb", "\r\n", "é", "\u2028",
          "\u2029", "\x85", "\ufeff", "\ufffe", "\uffff", "\x00", "\x1b[31m", "\x7f", "\x9f", "\\",
          "\\n", "=", "<<", "", "---", "...", "a\\b", "\U0001f600", "\u00a0", "x" * 2000]

STAYS_PLAIN = ["allowed", "map_rx", "/usr/lib/x86_64-linux-gnu/libc.so.6", "Linux", "Debian GNU/Linux",
               "flip_rw_rx", "x86_64", "glibc", "CPython", "a-b+c.d"]


@pytest.mark.parametrize("text", TRICKY, ids=repr)
@pytest.mark.parametrize("ascii_only", [False, True])
def test_tricky_string_round_trips_as_value_and_key(text, ascii_only):
    assert_round_trips({"value": text, "list": [text, [text]], text: {text: text}}, ascii_only)
    emitted = emit({"k": {text: [text, {text: text}]}}, ascii_only)
    assert _load.parse_document(emitted.encode("utf-8"), "t.yaml") == {"k": {text: [text, {text: text}]}}


@needs_yaml12
def test_yaml12_reader_reads_tricky_strings_and_numbers():
    data = {text: [text, 10 ** 30, -0.0, 1e-05, float("inf"), None, True] for text in TRICKY}
    assert same(yaml12_load(emit(data)), data)
    assert same(yaml12_load(emit(data, ascii_only=True)), data)


@pytest.mark.parametrize("text", STAYS_PLAIN)
def test_ordinary_words_stay_plain(text):
    assert emit({"key": text, text: [text]}) == "key: %s\n%s:\n- %s\n" % (text, text, text)


@pytest.mark.parametrize("text, written", [
    ("", '""'), ("yes", '"yes"'), ("a\tb", '"a\\tb"'), ("\x00\x01\x7f\x85", '"\\0\\x01\\x7f\\x85"'),
    ('say "hi"\\', '"say \\"hi\\"\\\\"'), ("\u2028\ufeff", '"\\u2028\\ufeff"'), ("é", '"é"'),
])
def test_quoted_forms(text, written):
    assert scalar(text) == written


def test_ascii_only_escapes_every_non_ascii_character():
    assert scalar("é\u20ac\U0001f600", ascii_only=True) == '"\\u00e9\\u20ac\\U0001f600"'


def test_lone_surrogates_are_escaped_for_the_pure_loader():
    # dumps() turns them into text first; the emitter still never writes one raw.
    assert scalar("a\udcff") == '"a\\udcff"'
    assert yaml.safe_load(emit({"k": "a\udcff"})) == {"k": "a\udcff"}


# ------------------------------------------------------------------ numbers and layout

@pytest.mark.parametrize("value, written", [
    (None, "null"), (True, "true"), (False, "false"), (0, "0"), (-7, "-7"), (10 ** 30, str(10 ** 30)),
    (1.5, "1.5"), (1e-05, "1.0e-05"), (1e16, "1.0e+16"), (-0.0, "-0.0"), (float("nan"), ".nan"),
    (float("inf"), ".inf"), (float("-inf"), "-.inf"), ({}, "{}"), ([], "[]"),
])
def test_scalar_forms(value, written):
    assert scalar(value) == written
    assert same(yaml.safe_load("k: %s\n" % written)["k"], value)


def test_layout_is_block_style_like_pyyaml():
    data = {"a": {"b": [1, [2, 3], {"c": None, "d": [True]}], "e": {}}, "f": "x"}
    assert emit(data) == ("a:\n  b:\n  - 1\n  - - 2\n    - 3\n  - c: null\n    d:\n    - true\n"
                          "  e: {}\nf: x\n")
    assert emit(data) == yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def test_long_keys_use_the_explicit_form():
    key = "k" * 1500   # past the 1024 characters any reader takes as an implicit key
    data = {key: 1, "list": [{key: [1, {key: "v"}]}], key + "2": {"a": 1}}
    assert "? " + key in emit(data)
    assert_round_trips(data)


@pytest.mark.parametrize("bad", [(1, 2), {1, 2}, b"x", object(), 1j, {1: "x"}, {None: "x"}, {"k": [(1,)]}])
def test_other_types_are_refused(bad):
    with pytest.raises(TypeError):
        emit({"k": bad} if not isinstance(bad, dict) else bad)


def test_top_level_scalar_and_list():
    for data in ("x", 3, None, [1, {"a": 2}], {}, []):
        assert_round_trips(data)


# ------------------------------------------------------------------ real reports

def key_paths(data, prefix=()):
    """Every key of a tree with its path, in order: order matters in a report."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield prefix + (key,)
            yield from key_paths(value, prefix + (key,))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from key_paths(item, prefix + (index,))


def test_real_run_report_is_deterministic_ordered_and_loads_back(reports):
    report = reports.get("plain")
    text = _report.dumps(report)
    assert text == _report.dumps(json.loads(json.dumps(report)))
    assert text.startswith("schema_version: 1\ntool:\n  name: memprobe\n")
    for reader, loaded in all_loads(text):
        assert same(loaded, report), reader
        assert list(key_paths(loaded)) == list(key_paths(report)), reader
    hardened = _load.parse_document(text.encode("utf-8"), "run.yaml")
    assert same(hardened, report)
    assert _load.report_problems(hardened) == []
    ascii_text = _report.dumps(report, ascii_only=True)
    assert ascii_text.isascii() and same(_load.parse_document(ascii_text.encode("ascii"), "run.yaml"), report)


@pytest.mark.parametrize("name", ["mdwe", "seccomp"])
def test_confined_run_reports_load_back(reports, name):
    report = reports.get(name)
    assert same(_load.parse_document(_report.dumps(report).encode("utf-8"), name + ".yaml"), report)


REFERENCE_REPORTS = sorted(glob.glob(os.path.join(ROOT, "reports", "*.yaml")))


def test_reference_reports_exist():
    assert len(REFERENCE_REPORTS) >= 5


@pytest.mark.parametrize("path", REFERENCE_REPORTS, ids=os.path.basename)
def test_reference_report_round_trips(path):
    with open(path, encoding="utf-8") as f:
        original = yaml.safe_load(f)
    text = _report.dumps(original)
    for reader, loaded in all_loads(text):
        assert same(loaded, original), reader
    assert same(_load.parse_document(text.encode("utf-8"), os.path.basename(path)), original)
    assert same(_load.load_report(path), original)
