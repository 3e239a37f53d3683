"""The public Python API, stable for report schema version 1 (re-exported by `probe`).

    import probe
    report = probe.run(only=["flip_rw_rx", "dual_map_memfd"])
    result = probe.check(report, {"wx_flip": "works"})

Importing this module imports nothing but probe.errors: `memprobe run` imports it
too (through `probe`), and its start-up time is measured. Every function imports
what it needs when it is called.

Errors are the classes of probe.errors, exported by `probe`: UsageError for
arguments that cannot work, InputError for a file that cannot be read, ReportError
(an InputError) for a document that is not a valid report, HostError when the host
cannot do what was asked. All are MemprobeError.
"""

from __future__ import annotations

import os

from probe.errors import InputError, ReportError, UsageError

# Names for the type checker only: importing typing would cost `memprobe run` ~2 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterable, Mapping, Union

    PathOrText = Union[str, bytes, "os.PathLike[str]"]
    ReportLike = Union[Mapping[str, Any], str, bytes, "os.PathLike[str]"]

from probe.vocab import FAILS, HOLDS, UNDECIDED  # noqa: E402

_TEXT_NAME = "<text>"


def run(only: Iterable[str] | str | None = None, isolation: str = "fork", timeout: float = 10.0,
        jobs: int | None = None) -> dict[str, Any]:
    """Probe this host as `memprobe run` does and return the report (schema version 1).

    only: probe ids (see `memprobe list`), a single id, or None for every probe.
    isolation: "fork" (each probe in a forked child) or "spawn" (a fresh interpreter each).
    timeout: seconds before a probe is killed and counted as `timeout`.
    jobs: probes run at once, each still in its own process (None: twice the CPUs, at most 4).
    Raises UsageError for bad arguments, HostError when the host cannot isolate probes.
    """
    import gc

    selected = _probe_ids(only)
    _check_run_arguments(isolation, timeout, jobs)
    from probe.report.collect import collect

    frozen_before = gc.get_freeze_count()
    try:
        return collect(selected, isolation, float(timeout), jobs=jobs)
    finally:
        # The fork runner freezes the heap so children do not copy it; a library call
        # must not leave the caller's objects frozen for the rest of its life.
        if frozen_before == 0:
            gc.unfreeze()


def _probe_ids(only):
    if only is None:
        return None
    ids = [only] if isinstance(only, str) else list(only)
    if not ids:
        raise UsageError("only: no probe ids given; pass None to run every probe")
    bad = [i for i in ids if not isinstance(i, str)]
    if bad:
        raise UsageError("only: probe ids are strings, got %r" % (bad[0],))
    return ids


def _check_run_arguments(isolation, timeout, jobs):
    if isolation not in ("fork", "spawn"):
        raise UsageError("isolation must be 'fork' or 'spawn', not %r" % (isolation,))
    number = isinstance(timeout, (int, float)) and not isinstance(timeout, bool)
    if not number or not 0 < timeout < float("inf"):
        raise UsageError("timeout must be a positive number of seconds, not %r" % (timeout,))
    if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1):
        raise UsageError("jobs must be a positive integer or None, not %r" % (jobs,))


def load(path_or_text: PathOrText) -> dict[str, Any]:
    """Read a report through the hardened loader and validate it against the schema.

    path_or_text: a path (str or os.PathLike), or the document itself: bytes, or a str
    holding a newline or starting with '{'. YAML or JSON.
    Raises InputError when a file cannot be read, ReportError when the document is
    malformed, hostile (tags, aliases, too deep or too large), of another schema
    version or invalid; the message is one line, `NAME:LINE:COL: problem`.
    """
    from probe.report import load as _load

    data = _document_bytes(path_or_text)
    if data is None:
        return _load.load_report(_file_path(path_or_text))
    doc = _load.parse_document(data, _TEXT_NAME)
    _load.check_version(doc, _TEXT_NAME)
    problems = _load.report_problems(doc)
    if problems:
        raise ReportError(_load.format_problem(_TEXT_NAME, data, problems[0], len(problems) - 1))
    return doc


def _file_path(path):
    """A path as a str; '-' is a file of that name here, not standard input as in the CLI."""
    path = os.fspath(path)
    return os.path.join(".", path) if path == "-" else path


def _document_bytes(path_or_text):
    """The document's bytes when path_or_text is the document itself; None for a path."""
    if isinstance(path_or_text, (bytes, bytearray)):
        data = bytes(path_or_text)
    elif isinstance(path_or_text, str) and ("\n" in path_or_text or path_or_text.lstrip().startswith("{")):
        data = path_or_text.encode("utf-8", "surrogatepass")
    elif isinstance(path_or_text, (str, os.PathLike)):
        return None
    else:
        raise UsageError("expected a path, bytes or the text of a report, not %s"
                         % type(path_or_text).__name__)
    from probe.report import load as _load

    limit = _load.max_bytes_default()
    if len(data) > limit:
        raise ReportError("%s: more than %d bytes, above the limit for a report "
                          "(set MEMPROBE_MAX_REPORT_BYTES to raise it)" % (_TEXT_NAME, limit))
    return data


def validate(report: Any) -> list[str]:
    """Every problem of a report (parsed data) against schema version 1, as
    'path: problem' lines; an empty list for a valid report. Never raises."""
    from probe.report import load as _load

    return _load.report_problems(report, full=True)


def _report(report, what="report"):
    """A validated report from a dict, a path or the document's text."""
    if isinstance(report, dict):
        problems = validate(report)
        if problems:
            more = " (and %d more problems)" % (len(problems) - 1) if len(problems) > 1 else ""
            raise ReportError("%s: %s%s" % (what, problems[0], more))
        return report
    return load(report)


class CheckLine:
    """One expectation and what the report says about it."""

    __slots__ = ("key", "kind", "expected", "verdict", "found")

    def __init__(self, key: str, kind: str | None, expected: str, verdict: str, found: str) -> None:
        self.key = key              # the probe id or capability name
        self.kind = kind            # "probe" or "capability"
        self.expected = expected    # the expectation in words: "wx_flip: works"
        self.verdict = verdict      # "holds", "fails" or "undecided"
        self.found = found          # what the report says: "blocked (...)"

    def __str__(self) -> str:
        return "%-9s %s  (found %s)" % ({HOLDS: "ok", FAILS: "FAIL"}.get(self.verdict, "UNDECIDED"),
                                        self.expected, self.found)

    def __repr__(self) -> str:
        return "CheckLine(%r, verdict=%r, found=%r)" % (self.expected, self.verdict, self.found)


class CheckResult:
    """The outcome of probe.check(): true only when every expectation holds."""

    def __init__(self, outcome: str, exit_code: int, lines: list[CheckLine], host: str) -> None:
        self.outcome = outcome        # "holds", "fails" (one fails) or "undecided" (none fails)
        self.exit_code = exit_code    # what `memprobe check` exits with: 0, 2 or 3
        self.lines = lines            # one CheckLine per expectation, in the given order
        self.host = host              # the report's host label

    def __bool__(self) -> bool:
        return self.outcome == HOLDS

    def __str__(self) -> str:
        return "\n".join([self.host] + [str(line) for line in self.lines])

    def __repr__(self) -> str:
        return "CheckResult(outcome=%r, lines=%d)" % (self.outcome, len(self.lines))


def check(report: ReportLike, expectations: Mapping[str, Any] | str | os.PathLike[str]) -> CheckResult:
    """Check a report against expectations, as `memprobe check` does.

    report: a report dict (from run() or load()), a path or the report's text.
    expectations: a dict in the expectations-file format ({"wx_flip": "works",
    "map_rwx": ["denied", "crashed"], "strategies": {...}, "any": [...], "all": [...],
    "sections": [{"when": {...}, ...}]}) or the path of such a file. Only the
    expectations that apply to the report's host give lines; none applying is
    undecided.
    Raises InputError for expectations that name unknown probes or capabilities or
    use unknown words (FILE:LINE for a file), ReportError for an invalid report.
    """
    from probe.render import text as _render
    from probe import gate as checking
    from probe.errors import EXIT_DIFFERENT, EXIT_OK

    doc = _report(report)
    parsed = _expectations(expectations, checking)
    checking.resolve(parsed, doc)
    results = checking.check(parsed, doc)
    exit_code = checking.exit_status(results)
    outcome = {EXIT_OK: HOLDS, EXIT_DIFFERENT: FAILS}.get(exit_code, UNDECIDED)
    lines = [CheckLine(exp.key, getattr(exp, "kind", None), exp.describe(), verdict, found)
             for exp, verdict, found in results]
    return CheckResult(outcome, exit_code, lines, _render.host_label(doc))


def _expectations(expectations, checking):
    if isinstance(expectations, (str, os.PathLike)):
        return checking.load_expectations(_file_path(expectations))
    if not isinstance(expectations, dict):
        raise UsageError("expectations: a dict or the path of an expectations file, not %s"
                         % type(expectations).__name__)
    import json

    from probe.report import load as _load

    # Through the same loader as a file: plain data only, whatever the dict holds.
    try:
        text = json.dumps(expectations, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError("expectations: not plain data: %s" % exc) from None
    doc = _load.parse_document(text.encode("utf-8"), "<expectations>", fmt="json")
    parsed, problems = checking.parse_expectations(doc)
    if problems:
        raise InputError("expectations: %s" % problems[0])
    if not parsed:
        raise InputError("expectations: none given")
    return parsed


def diff(a: ReportLike, b: ReportLike) -> dict[str, Any]:
    """What differs between two reports, as `memprobe diff --format json` says it.

    a, b: report dicts, paths or texts. Returns {"equal": bool, "differences": [...],
    "context": [...]}: each difference has "section" (capabilities, probes, policies,
    strategies, recommendation, measurements), "key", maybe "field", and the values
    "a" and "b" (a side is absent where the report lacks the item); "context" lists
    host and process fields that differ but do not make the reports differ.
    Raises ReportError for an invalid report.
    """
    from probe.gate.compare import compare

    return compare(_report(a, "a"), _report(b, "b"))
