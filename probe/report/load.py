"""The one loader for untrusted report files (and expectation files).

Reports come from other machines and bug trackers, so everything here assumes a
hostile author. A loaded document is always plain JSON-shaped data: dicts with
str keys, lists, str, int, finite float, bool and None. Every failure is a
ReportError (or InputError for I/O) whose message is one line naming the file
and, where the parser knows it, the line: ``FILE:LINE:COL: problem``.

YAML rules, beyond yaml's safe loader:
- only the plain types above; any other tag (``!!python/object``, ``!!binary``,
  ``!!set``, local ``!tags``) is refused, never constructed;
- no aliases (``*name``) and no merge keys (``<<``): this shuts out
  billion-laughs expansion; memprobe never writes either;
- no duplicate keys, no non-string keys, no NaN/infinity;
- at most MAX_DEPTH levels of nesting and MAX_NODES nodes, checked before
  libyaml builds its node tree (its composer recurses in C and crashes the
  interpreter on a 100,000-deep ``[[[[...``);
- at most max_bytes bytes (MEMPROBE_MAX_REPORT_BYTES, default 4 MiB).

The pieces live apart: reading (probe.report.reading), limits, JSON
(probe.report.json_doc), YAML (probe.report.yaml_doc, yaml_screen, yaml_builder),
the light checks (probe.report.light_checks) and the safe text helpers; this
module ties them together and keeps their public names in one place.
"""

from __future__ import annotations


from probe.errors import ReportError
from probe.report.json_doc import parse_json
from probe.report.light_checks import light_problems
from probe.report.limits import DEFAULT_MAX_BYTES, MAX_BYTES_SETTING, MAX_DEPTH, MAX_NODES, max_bytes_default
from probe.report.locate import Locator, format_problem
from probe.report.reading import file_kind, open_regular, read_bytes
from probe.report.safe_text import clean, display_name, type_word
from probe.report.yaml_doc import parse_yaml
from probe.vocab import SUPPORTED_SCHEMA_VERSIONS

# Names for the type checker only: importing typing would slow `memprobe run` down.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List, Optional

__all__ = [
    "DEFAULT_MAX_BYTES", "MAX_BYTES_SETTING", "MAX_DEPTH", "MAX_NODES", "Locator", "check_version", "clean",
    "display_name", "file_kind", "format_problem", "light_problems", "load_report", "max_bytes_default",
    "open_regular", "parse_document", "read_bytes", "report_problems", "schema_problems", "type_word",
    "version_problem",
]


def parse_document(data: bytes, name: str, fmt: Optional[str] = None) -> Any:
    """Parse untrusted bytes (YAML or JSON) into plain data, or raise ReportError.

    fmt: 'json', 'yaml' or None to decide from the content (a document whose
    first character is '{' is tried as JSON first, which is much faster).
    """
    name = display_name(name)
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if fmt is None:
        head = data[:64].lstrip()
        fmt = "json?" if head.startswith(b"{") else "yaml"
    if fmt in ("json", "json?"):
        try:
            return parse_json(data, name)
        except ReportError:
            if fmt == "json":
                raise
        # '{' also starts a YAML flow mapping: fall through to YAML.
    return parse_yaml(data, name)


def version_problem(doc: Any) -> Optional[str]:
    """None when doc is a mapping with a supported schema_version, else the problem."""
    if not isinstance(doc, dict):
        return "a report is a mapping, this document is a %s" % type_word(doc)
    version = doc.get("schema_version")
    if type(version) is int and version in SUPPORTED_SCHEMA_VERSIONS:
        return None
    supported = ", ".join(str(v) for v in SUPPORTED_SCHEMA_VERSIONS)
    if "schema_version" not in doc:
        what = "no schema_version"
    else:
        what = "schema_version %s" % clean(repr(version), 40)
    return "%s is not supported; this memprobe reads schema_version %s" % (what, supported)


def check_version(doc: Any, name: str) -> None:
    """Raise ReportError unless doc is a mapping with a supported schema_version."""
    problem = version_problem(doc)
    if problem:
        raise ReportError("%s: %s" % (name, problem))


def schema_problems(doc: Any) -> List[str]:
    """The full JSON-Schema check (probe.report.validator)."""
    from probe.report.validator import validate

    return [clean(p, 300) for p in validate(doc)]


def report_problems(doc: Any, full: bool = True) -> List[str]:
    """All problems of a parsed report (version first: nothing else is meaningful without it).

    full: the JSON Schema check, then (if that passes) the light checks, which
    guard what the collector code assumes; otherwise the light checks only.
    """
    problem = version_problem(doc)
    if problem:
        return [problem]
    if full:
        problems = schema_problems(doc)
        if problems:
            return problems
    return light_problems(doc)


def load_report(path: str, full: bool = True, max_bytes: Optional[int] = None) -> Any:
    """Read, parse and validate one report; raise ReportError naming the first problem."""
    data = read_bytes(path, max_bytes)
    name = "<stdin>" if path == "-" else display_name(path)
    doc = parse_document(data, name, fmt="json" if str(path).endswith(".json") else None)
    check_version(doc, name)
    problems = report_problems(doc, full=full)
    if problems:
        raise ReportError(format_problem(name, data, problems[0], len(problems) - 1))
    return doc
