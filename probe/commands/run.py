"""`memprobe run`: probe this host, print the report and write it to reports/."""

import argparse
import os
import sys

from probe.commands import _terminal
from probe.commands._options import add_probe_arguments, via_unmarked_copy
from probe.errors import OutputError
from probe.report.collect import UNMARKED_ENV



def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_probe_arguments(parser)
    parser.add_argument("--format", choices=("yaml", "json"),
                        help="report format (default: the --output file's extension, else yaml)")
    parser.add_argument("--output", "-o", metavar="PATH",
                        help="report file (default reports/<os>-<arch>-<host>.yaml, with -only-.../-mdwe/"
                             "-seccomp/-nonroot/... added for a subset or confined run); '-' for stdout only")
    parser.add_argument("--arm-mode", choices=("arm", "thumb"), default="arm",
                        help="32-bit ARM only: generate ARM or Thumb code")
    parser.add_argument("--junit", metavar="PATH", help="also write JUnit XML, one test case per probe")
    parser.add_argument("--quiet", "-q", action="store_true", help="do not print the report on stdout")
    parser.add_argument("--redact", action="store_true",
                        help="pseudonymise the host name and drop user names, home directories, "
                             "private mount points and non-root uids from the report (see `memprobe redact`)")
    parser.add_argument("--like-unit", metavar="UNIT",
                        help="run the probes in a transient systemd unit with UNIT's sandbox properties")
    from probe.render.perspective import add_perspective_argument
    add_perspective_argument(parser)


def _default_path(report, fmt, only):
    """reports/<os>-<arch>-<host>[-conditions].<ext>, saying on stderr when a subset or
    confined run is kept apart from the host's full report."""
    from probe.report import report_name as _report_name
    path, full, conditions = _report_name.default_run_path(report, fmt, only)
    if conditions:
        sys.stderr.write("memprobe: not a full unconfined run (%s): writing %s, not %s\n"
                         % (", ".join(conditions), path, full))
    return path


def main(args: argparse.Namespace) -> int:
    from probe.report import output as _output
    fmt = _output.choose_format(args.output, args.format)
    for path in (args.output, args.junit):   # before the probes run, not after
        _output.refuse_directory(path)
    if args.pax_defaults and not os.environ.get(UNMARKED_ENV):
        code = via_unmarked_copy(args)
        if code is not None:
            return code
    report = _probe_report(args)
    from probe.report import build as _report   # after the probes: see probe.report.collect
    text = _report.dumps(report, fmt)
    failures, written = _write_files(args, report, text, fmt)
    if not args.quiet:   # even when a file failed: the probing work must not be lost
        _print(args, report, text, fmt, written)
    _output.raise_first(failures)
    return 0


def _probe_report(args):
    """The report of this run, redacted when asked."""
    if args.redact:   # the key first: a missing key file must not cost a whole run
        from probe.report import redact as _redact
        redaction_key = _redact.host_key()
    if args.like_unit:
        from probe.engine import like_unit as _like_unit
        report = _like_unit.collect(args)
    else:
        report = _terminal.collect(args)
    if args.redact:
        report = _redact.redact_report(report, key=redaction_key)
    return report


def _print(args, report, text, fmt, written):
    """The summary on a terminal when the report went to a file, else the report itself."""
    from probe.report import output as _output
    from probe.report import build as _report
    if _terminal.wants_summary(args.output, written):
        _output.write_stdout(_terminal.summary(report, written, args.perspective))
        return
    if not _output.stdout_takes_utf8():
        text = _report.dumps(report, fmt, ascii_only=True)
    _output.write_stdout(text)


def _write_files(args, report, text, fmt):
    """Write the report file and the JUnit file: (the OutputErrors of those that failed,
    the report file's path or None when none was written)."""
    from probe.report import output as _output
    failures, written = [], None
    if args.output != "-":
        path = args.output or _default_path(report, fmt, args.only)
        try:
            _output.write_file(path, text)
            written = path
            sys.stderr.write("memprobe: report written to %s\n" % _output.display(path))
        except OutputError as exc:
            failures.append(exc)
    if args.junit:
        from probe.render import junit as _junit
        try:
            _output.write_file(args.junit, _junit.run_junit(report))
        except OutputError as exc:
            failures.append(exc)
    return failures, written
