"""`memprobe redact REPORT [--output PATH]`: a copy of a report fit for a public bug tracker.

The host name becomes a keyed pseudonym, home directories, user names and non-standard
mount points leave the paths, uids other than root become null (see probe/_redact.py).
Run it on the host that wrote the report: the pseudonym is keyed with this machine's
secret, so it matches what `memprobe run --redact` writes here.
"""

import sys

from probe._errors import UsageError


def add_arguments(parser) -> None:
    parser.add_argument("report", metavar="REPORT", help="report file (YAML or JSON; '-' for stdin)")
    parser.add_argument("--output", "-o", metavar="PATH", default="-",
                        help="write the redacted report here (default '-': stdout)")
    parser.add_argument("--format", choices=("yaml", "json"),
                        help="output format (default: json for a .json --output, else yaml)")


def output_format(args) -> str:
    by_name = "json" if args.output.endswith(".json") else "yaml"
    if args.format and args.output != "-" and args.output.endswith((".json", ".yaml", ".yml")) \
            and args.format != by_name:
        raise UsageError("--format %s contradicts the extension of --output %s" % (args.format, args.output))
    return args.format or by_name


def main(args) -> int:
    from probe import _redact, _report
    from probe._load import clean, load_report

    fmt = output_format(args)
    doc = _redact.redact_report(load_report(args.report))
    text = _report.dumps(doc, fmt)
    if args.output == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        _report.write_atomic(args.output, text)
        sys.stderr.write("memprobe: redacted report written to %s\n" % clean(args.output))
    return 0
