"""`memprobe redact REPORT [--output PATH]`: a copy of a report fit for a public bug tracker.

The host name becomes a keyed pseudonym, home directories, user names and non-standard
mount points leave the paths, uids other than root become null (see probe/report/redact.py).
Run it on the host that wrote the report: the pseudonym is keyed with this machine's
secret, so it matches what `memprobe run --redact` writes here.
"""

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("report", metavar="REPORT", help="report file (YAML or JSON; '-' for stdin)")
    parser.add_argument("--output", "-o", metavar="PATH", default="-",
                        help="write the redacted report here (default '-': stdout)")
    parser.add_argument("--format", choices=("yaml", "json"),
                        help="output format (default: json for a .json --output, else yaml)")


def output_format(args: argparse.Namespace) -> str:
    from probe.report import output as _output
    return _output.choose_format(args.output, args.format)


def main(args: argparse.Namespace) -> int:
    from probe.report import output as _output
    from probe.report import redact as _redact
    from probe.report import build as _report
    from probe.report.load import load_report

    fmt = output_format(args)
    _output.refuse_directory(args.output)
    doc = _redact.redact_report(load_report(args.report))
    text = _report.dumps(doc, fmt)
    if args.output == "-":
        if not _output.stdout_takes_utf8():
            text = _report.dumps(doc, fmt, ascii_only=True)
        _output.write_stdout(text)
    else:
        _output.write_file(args.output, text)
        sys.stderr.write("memprobe: redacted report written to %s\n" % _output.display(args.output))
    return 0
