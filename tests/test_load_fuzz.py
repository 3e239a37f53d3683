"""Property-based hostile-input tests: truncated, mutated, retyped and hostile documents
thrown at every path that reads an untrusted file (load, validate, show, diff, matrix,
check and its expectation files). Each must end in a clean error (InputError /
ReportError, or the CLI's exit 1 with one line on stderr) or a correct result:
never a traceback, an internal error or a hang.
"""

import json
import os
import xml.etree.ElementTree as ET

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probe import cli
from probe.report import load as _load
from probe.render import junit as _junit
from probe.render import text as _render
from probe.commands import check
from probe.commands import diff
from probe.commands import matrix
from probe.commands import show
from probe.commands import validate
from probe.errors import InputError

from helpers.collect_fixtures import HOSTILE, real  # noqa: F401

pytestmark = pytest.mark.slow

SETTINGS = settings(max_examples=int(os.environ.get("MEMPROBE_FUZZ_EXAMPLES", "60")), deadline=None,
                    derandomize=bool(os.environ.get("CI")),
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])

EXPECT = b"""\
nx: enforced
wx_flip: works
flip_rw_rx: {outcome: [allowed, denied], errno: [EACCES, EPERM]}
map_rwx: {denied_by: mdwe}
dual_map_shm: allowed
"""


@pytest.fixture(scope="module")
def base(real, tmp_path_factory):
    """A real YAML report, its bytes and parsed form, and an expectations file."""
    d = tmp_path_factory.mktemp("fuzz")
    path = real.yaml("plain")
    with open(path, "rb") as f:
        data = f.read()
    expect = d / "expect.yaml"
    expect.write_bytes(EXPECT)
    return {"dir": d, "path": path, "data": data, "doc": _load.load_report(path), "expect": str(expect)}


def one_line(text):
    assert isinstance(text, str) and text
    assert "\n" not in text and "\x1b" not in text, repr(text)
    assert "Traceback" not in text


def run_cli(capsys, argv):
    capsys.readouterr()
    status = cli.main(argv)
    out, err = capsys.readouterr()
    assert status in (0, 1, 2, 3), (argv, status, err)
    assert "Traceback" not in err and "internal error" not in err, err
    if status == 1 and argv[0] != "validate":
        assert err.startswith("memprobe: error: ") and err.count("\n") == 1, err
    return status, out, err


def exercise(path, base, capsys, monkeypatch):
    """Every reader of a report file, in process and through the CLI."""
    monkeypatch.delenv("MEMPROBE_DEBUG", raising=False)
    doc = None
    try:
        doc = _load.load_report(path)
    except InputError as exc:
        one_line(str(exc))
        assert str(exc).startswith(_load.display_name(path))
    problems = validate.problems_of(path)
    for problem in problems:
        one_line(problem)
    assert (doc is None) == bool(problems), problems
    row = matrix.read_row(path)
    assert row[0] == ("bad" if doc is None else "ok")
    if doc is not None:
        show.render(doc, _render.Palette(True))
        result = diff.compare(base["doc"], doc)
        result.update(a={"file": "a", "host": "A"}, b={"file": "b", "host": "B"})
        diff.render_text(result, base["doc"], doc, _render.Palette(False))
        json.loads(_render.dump_machine(diff.machine_form(result), "json"))
        ET.fromstring(_junit.run_junit(doc).encode("utf-8"))
        rows, caps, _ = matrix.build_matrix([row[1]])
        matrix.render_markdown(rows, caps)
        matrix.render_csv(rows, caps)
        json.loads(matrix.render_json(rows, caps))
        matrix.render_html(rows, caps)
        exps = check.load_expectations(base["expect"])
        try:
            check.resolve(exps, doc)
        except InputError as exc:
            one_line(str(exc))
        else:
            check.check(exps, doc)
    else:
        one_line(row[2])
    status, out, _ = run_cli(capsys, ["validate", "-q", path])
    assert status == (1 if problems else 0)
    assert run_cli(capsys, ["show", path])[0] == (1 if doc is None else 0)
    assert run_cli(capsys, ["diff", base["path"], path])[0] in ((1,) if doc is None else (0, 2))
    assert run_cli(capsys, ["matrix", "--strict", path])[0] == (1 if doc is None else 0)
    assert run_cli(capsys, ["check", "-e", base["expect"], path])[0] in ((1,) if doc is None else (0, 1, 2, 3))
    return doc


def write(base, data, name="fuzz.yaml"):
    path = os.path.join(str(base["dir"]), name)
    with open(path, "wb") as f:
        f.write(data)
    return path


# --------------------------------------------------------------------------- byte mutations

@st.composite
def mutated(draw, data):
    """A real report's bytes, truncated, with bytes flipped, ranges deleted or repeated,
    or a hostile snippet spliced in at a line start."""
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "flip", "delete", "repeat", "splice"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if kind == "truncate":
            del data[i:]
        elif kind == "flip":
            data[i] = draw(st.integers(0, 255))
        elif kind == "delete":
            del data[i:i + draw(st.integers(1, 200))]
        elif kind == "repeat":
            data[i:i] = data[i:i + draw(st.integers(1, 400))]
        else:
            start = data.rfind(b"\n", 0, i) + 1
            snippet = draw(st.sampled_from(SNIPPETS))
            data[start:start] = snippet
    return bytes(data)


SNIPPETS = [
    b"x: !!python/object/apply:os.system ['true']\n", b"  evil: &a [*a]\n", b"- - - - - - - -\n",
    b"  <<: {a: 1}\n", b"\xff\xfe\x00\n", b"\x1b[2J\n", b"  outcome: !!binary aGk=\n",
    b"probes: ~\n", b"summary: [1, 2]\n", b"  hostname: 12\n", b"schema_version: 2\n",
    b"  state: {a: [b, {c: d}]}\n", b"  2: two\n", b"  x: .inf\n", b"  attribution: [{mechanism: 3}]\n",
    b"[" * 300 + b"\n", b"  " + b"9" * 500 + b": x\n", b"---\n", b"...\n", b"%YAML 1.1\n",
    b"  a: &x 1\n  b: *x\n", b"\t\n", b"\"unterminated\n", b"? [a, b]\n: c\n",
]


@SETTINGS
@given(data=st.data())
def test_mutated_real_reports(base, capsys, monkeypatch, data):
    blob = data.draw(mutated(base["data"]))
    exercise(write(base, blob), base, capsys, monkeypatch)


# --------------------------------------------------------------------------- wrong types

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from _paths(value, prefix + (i,))


@SETTINGS
@given(data=st.data())
def test_retyped_real_reports(base, capsys, monkeypatch, data):
    """Valid YAML/JSON whose values have the wrong type or shape, or keys missing or extra."""
    doc = json.loads(json.dumps(base["doc"]))
    paths = sorted(_paths(doc), key=repr)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        parent = doc
        try:
            for part in path[:-1]:
                parent = parent[part]
        except (KeyError, IndexError, TypeError):
            continue
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if not path:
            doc = data.draw(json_values)
            break
        key = path[-1]
        try:
            if action == "replace":
                parent[key] = data.draw(json_values)
            elif action == "delete":
                del parent[key]
            elif isinstance(parent, dict):
                parent[data.draw(st.text(min_size=1, max_size=10))] = data.draw(json_values)
        except (KeyError, IndexError, TypeError):
            continue
    fmt = data.draw(st.sampled_from(["yaml", "json"]))
    text = json.dumps(doc) if fmt == "json" else yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    exercise(write(base, text.encode("utf-8", "surrogatepass"), "fuzz." + fmt), base, capsys, monkeypatch)


# --------------------------------------------------------------------------- hostile documents

TAGS = ["!!python/object:os.system", "!!python/object/apply:subprocess.call", "!!python/name:sys.exit",
        "!!python/module:os", "!!binary", "!!set", "!!omap", "!!pairs", "!local", "!<tag:evil.example,2020:x>",
        "!!timestamp", "!!str", "!!int", "!!float", "!!map", "!!seq", "!!null", "!!bool", "!!merge", "!"]


@st.composite
def hostile(draw):
    kind = draw(st.sampled_from(["tag", "aliases", "deep", "garbage", "encoding", "known", "big"]))
    if kind == "tag":
        tag = draw(st.sampled_from(TAGS))
        value = draw(st.sampled_from(["{}", "[]", "x", "aGVsbG8=", "[a, b]", "{a: 1}", "1", "2001-01-01"]))
        return ("schema_version: 1\nhost: %s %s\n" % (tag, value)).encode()
    if kind == "aliases":
        depth = draw(st.integers(1, 12))
        width = draw(st.integers(1, 12))
        lines = [b"a0: &a0 [x]"]
        for i in range(1, depth):
            lines.append(b"a%d: &a%d [%s]" % (i, i, b", ".join([b"*a%d" % (i - 1)] * width)))
        return b"\n".join(lines) + b"\n"
    if kind == "deep":
        depth = draw(st.integers(50, 20000))
        opener = draw(st.sampled_from([b"[", b"{a: ", b"- ", b"a:\n" + b" "]))
        if opener == b"[":
            return b"[" * depth + b"]" * depth
        if opener == b"{a: ":
            return b"{a: " * depth + b"1" + b"}" * depth
        if opener == b"- ":
            return b"- " * depth + b"x\n"
        return b"".join(b" " * i + b"a:\n" for i in range(min(depth, 3000))) + b" " * 3000 + b"x\n"
    if kind == "garbage":
        return draw(st.binary(max_size=2000))
    if kind == "encoding":
        text = draw(st.text(max_size=200))
        encoding = draw(st.sampled_from(["latin-1", "utf-16", "utf-32", "cp1252"]))
        return ("schema_version: 1\nhost: {hostname: %s}\n" % json.dumps(text)).encode(encoding, "replace")
    if kind == "big":
        return b"schema_version: 1\nx: [" + b"1," * draw(st.integers(100000, 300000)) + b"1]\n"
    return HOSTILE[draw(st.sampled_from(sorted(HOSTILE)))]


@SETTINGS
@given(blob=hostile())
def test_hostile_documents(base, capsys, monkeypatch, blob):
    assert exercise(write(base, blob), base, capsys, monkeypatch) is None


def test_documents_over_the_size_limit(base, capsys, monkeypatch):
    monkeypatch.setenv("MEMPROBE_MAX_REPORT_BYTES", str(len(base["data"]) - 1))
    path = write(base, base["data"])
    assert exercise(path, base, capsys, monkeypatch) is None


# --------------------------------------------------------------------------- valid data round trip

plain_data = st.recursive(
    st.none() | st.booleans() | st.integers(-10 ** 30, 10 ** 30) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(blacklist_categories=("Cs",)), max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=8), inner, max_size=5),
    max_leaves=30)


@SETTINGS
@given(value=plain_data, style=st.sampled_from([None, True, False]))
def test_plain_yaml_loads_exactly_like_the_safe_loader(value, style):
    """The leaner resolver and node builder must not change what a document means."""
    text = yaml.safe_dump({"v": value}, default_flow_style=style, allow_unicode=True)
    data = text.encode("utf-8")
    assert _load.parse_document(data, "x") == yaml.load(data, Loader=yaml.CSafeLoader)
    data = json.dumps({"v": value}).encode()
    assert _load.parse_document(data, "x.json") == json.loads(data)


# --------------------------------------------------------------------------- expectation files

expectation_values = st.one_of(
    st.sampled_from(["allowed", "denied", "works", "blocked", "enforced", "skipped", "nope", ""]),
    st.lists(st.sampled_from(["allowed", "denied", "crashed", "works", 3]), max_size=3),
    st.dictionaries(st.sampled_from(["outcome", "errno", "signal", "step", "denied_by", "confidence", "state",
                                     "other"]),
                    st.one_of(st.sampled_from(["denied", "EACCES", "SIGSEGV", "mdwe", "likely", "works", "x"]),
                              st.lists(st.sampled_from(["EPERM", 13, "pax", None]), max_size=3), json_values),
                    max_size=4),
    json_values)


@SETTINGS
@given(doc=st.dictionaries(st.sampled_from(["flip_rw_rx", "map_rwx", "nx", "wx_flip", "read_implies_exec",
                                            "probes", "capabilities", "schema_version", "Bad Key", "zzz"]),
                           expectation_values, max_size=5),
       fmt=st.sampled_from(["yaml", "json"]))
def test_random_expectation_files(base, capsys, monkeypatch, doc, fmt):
    monkeypatch.delenv("MEMPROBE_DEBUG", raising=False)
    text = json.dumps(doc) if fmt == "json" else yaml.safe_dump(doc)
    path = write(base, text.encode(), "expect." + fmt)
    try:
        exps = check.load_expectations(path)
    except InputError as exc:
        one_line(str(exc))
        exps = None
    if exps is not None:
        try:
            check.resolve(exps, base["doc"])
        except InputError as exc:
            one_line(str(exc))
        else:
            for _, verdict, found in check.check(exps, base["doc"]):
                assert verdict in ("holds", "fails", "undecided") and isinstance(found, str)
    status, _, _ = run_cli(capsys, ["check", "-e", path, base["path"]])
    assert (status == 1) >= (exps is None)


@SETTINGS
@given(data=st.data())
def test_mutated_and_hostile_expectation_files(base, capsys, monkeypatch, data):
    monkeypatch.delenv("MEMPROBE_DEBUG", raising=False)
    blob = data.draw(st.one_of(mutated(EXPECT), hostile()))
    path = write(base, blob, "expect.yaml")
    try:
        check.load_expectations(path)
    except InputError as exc:
        one_line(str(exc))
    run_cli(capsys, ["check", "-e", path, base["path"]])
