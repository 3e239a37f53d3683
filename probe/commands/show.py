"""`memprobe show REPORT`: a report as a readable terminal summary."""

import argparse
import sys

from probe.report import output as _output
from probe.render import text as _render
from probe.render.summary import render  # noqa: F401 - also this module's API


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("report", metavar="REPORT", help="report file (YAML or JSON; '-' for stdin)")
    _render.add_colour_argument(parser)
    _render.add_perspective_argument(parser)


def main(args: argparse.Namespace) -> int:
    _render.tolerant_stdout()
    from probe.report.load import load_report

    doc = load_report(args.report)
    palette = _render.Palette.for_stream(sys.stdout, args.colour, args.perspective)
    name = "<stdin>" if args.report == "-" else args.report
    _output.write_stdout(render(doc, palette, name))
    return 0
