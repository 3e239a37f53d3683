"""`memprobe validate REPORT...`: check reports against the report schema.

One line per problem, `FILE:LINE:COL: path: problem` (the line where the file
gives one); `FILE: ok` for a valid report. Exit 0 when every report is valid,
1 otherwise.
"""

import argparse

from probe.report import output as _output
from probe.render import text as _render
from probe.errors import EXIT_OK, EXIT_USAGE, InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reports", nargs="+", metavar="REPORT", help="report files (YAML or JSON; '-' for stdin)")
    parser.add_argument("--quiet", "-q", action="store_true", help="print only problems")


def problems_of(path: str) -> "list[str]":
    """Every problem of one report file as display lines (empty: valid)."""
    from probe.report import load as _load

    name = "<stdin>" if path == "-" else _load.display_name(path)
    try:
        data = _load.read_bytes(path)
        doc = _load.parse_document(data, name, fmt="json" if str(path).endswith(".json") else None)
    except InputError as exc:  # ReportError too: unreadable, unparsable or hostile
        return [str(exc)]
    locator = _load.Locator(data)
    return [_load.format_problem(name, data, problem, locator=locator)
            for problem in _load.report_problems(doc, full=True)]


def main(args: argparse.Namespace) -> int:
    _render.tolerant_stdout()
    from probe.report import load as _load

    _load.max_bytes_default()   # a bad MEMPROBE_MAX_REPORT_BYTES: one error, not one per file
    status = EXIT_OK
    for path in args.reports:
        lines = problems_of(path)
        if lines:
            status = EXIT_USAGE
            _output.write_stdout([line + "\n" for line in lines])
        elif not args.quiet:
            from probe.report.load import display_name

            _output.write_stdout("%s: ok\n" % ("<stdin>" if path == "-" else display_name(path)))
    return status
