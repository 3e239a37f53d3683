"""`memprobe report --for-issue [REPORT]`: Markdown for a bug tracker.

With REPORT, that report; without, the probes run on this host first (as `run --output -`
would: no file is written). Either way the report is redacted before anything is printed.
"""

import argparse

from probe.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from probe.commands._options import add_probe_arguments
    from probe.render.perspective import add_perspective_argument

    parser.add_argument("--for-issue", action="store_true", required=True,
                        help="print Markdown to paste into a bug tracker: the host, the capability table, "
                             "the recommendation and the full redacted report in a <details> block")
    parser.add_argument("report", nargs="?", metavar="REPORT",
                        help="report file (YAML or JSON; '-' for stdin); without it, the probes run here first")
    add_probe_arguments(parser)
    add_perspective_argument(parser)


def main(args: argparse.Namespace) -> int:
    from probe.render import issue_markdown as _issue_markdown
    from probe.report import build as _report
    from probe.report import output as _output
    from probe.report import redact as _redact

    if args.report is None:
        doc = _probe_here(args)
    else:
        from probe.report.load import load_report
        doc = load_report(args.report)
    doc = _redact.redact_report(doc)
    _output.write_stdout(_issue_markdown.render(doc, _report.dumps(doc, "yaml"), "yaml", args.perspective))
    return 0


def _probe_here(args):
    from probe.commands import _terminal

    if args.pax_defaults:   # it re-runs a command from an interpreter copy: run does that
        raise UsageError("report: for --pax-defaults, run `memprobe run --pax-defaults -o FILE`, "
                         "then `memprobe report --for-issue FILE`")
    return _terminal.collect(args)
