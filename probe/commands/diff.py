"""`memprobe diff A B`: what differs between two reports.

Compared: capability states (summary), probe verdicts (outcome, step, errno,
signal, returned value, dropped PROT_EXEC, attribution), policies, strategies,
recommendation and which measurements were taken. Not compared: generated_at,
durations, measured numbers, free-text details and the tool version. Host and
process fields are shown as context when they differ but do not make reports
differ: comparing two hosts is what diff is for.
Exit status: 0 equivalent, 2 different, 1 unreadable input.
"""

import re
import sys

from probe.report import output as _output
from probe.render import text as _render
from probe.render.text import text
from probe.errors import EXIT_DIFFERENT, EXIT_OK
from probe.gate.compare import SINGULAR, compare, machine_form, side_value  # noqa: F401 - compare: also the API


def add_arguments(parser):
    parser.add_argument("a", metavar="A", help="first report (YAML or JSON)")
    parser.add_argument("b", metavar="B", help="second report")
    parser.add_argument("--format", "-f", choices=("text", "yaml", "json"),
                        help="text for people (default, unless --output ends in .yaml, .yml or .json), "
                        "yaml or json for programs")
    parser.add_argument("--output", "-o", metavar="PATH", help="write the diff to PATH instead of stdout")
    _render.add_colour_argument(parser)


def main(args):
    _render.tolerant_stdout()
    args.format = _output.choose_format(args.output, args.format, default="text")
    from probe.report.load import load_report

    a = load_report(args.a)
    b = load_report(args.b)
    result = compare(a, b)
    result["a"] = {"file": _name(args.a), "host": _render.host_label(a)}
    result["b"] = {"file": _name(args.b), "host": _render.host_label(b)}
    if args.format == "text":
        stream_is_file = args.output not in (None, "-")
        palette = _render.Palette(False) if stream_is_file else _render.Palette.for_stream(sys.stdout, args.colour)
        out = render_text(result, a, b, palette)
    else:
        out = _render.dump_machine(machine_form(result), args.format)
    _render.write_text(args.output, out)
    return EXIT_OK if result["equal"] else EXIT_DIFFERENT


def _name(path):
    return "<stdin>" if path == "-" else text(path, 0)


def render_text(result, a, b, palette):
    from probe.render.text import probe_detail

    p = palette
    out = ["--- A: %s  %s" % (text(result["a"]["file"]), result["a"]["host"]),
           "+++ B: %s  %s" % (text(result["b"]["file"]), result["b"]["host"])]
    if result["context"]:
        out.append(p.paint("dim", "context (shown, not compared):"))
        for item in result["context"]:
            out.append(p.paint("dim", "  %s: %s -> %s" % (text(item["key"]), side_value(item, "a"), side_value(item, "b"))))
    by_section = {}
    for item in result["differences"]:
        by_section.setdefault(item["section"], []).append(item)
    for section, items in by_section.items():
        out.append(p.paint("bold", "%s:" % section))
        if section == "probes":
            done = set()
            pa, pb = a.get("probes") or {}, b.get("probes") or {}
            for item in items:
                pid = item["key"]
                if pid in done:
                    continue
                done.add(pid)
                out.append("  %s: %s -> %s" % (text(pid), _verdict(pa.get(pid), p, probe_detail),
                                               _verdict(pb.get(pid), p, probe_detail)))
                for attr in (i for i in items if i["key"] == pid and i.get("field") == "attribution"):
                    out.append("    attribution: %s -> %s" % (side_value(attr, "a"), side_value(attr, "b")))
        else:
            for item in items:
                label = item["key"] + ("." + item["field"] if item.get("field") else "")
                va, vb = side_value(item, "a"), side_value(item, "b")
                if label == section:  # a one-value section such as the recommendation
                    out.append("  %s -> %s" % (p.verdict(va), p.verdict(vb)))
                else:
                    out.append("  %s: %s -> %s" % (text(label), p.verdict(va), p.verdict(vb)))
    if by_section:
        counts = []
        for section, items in by_section.items():
            n = len({re.split(r"[.\[]", i["key"], maxsplit=1)[0] for i in items})
            counts.append("%d %s" % (n, section if n != 1 else SINGULAR.get(section, section)))
        out.append("differ in " + ", ".join(counts))
    else:
        out.append("no differences (generated_at, durations, measured numbers and details are not compared)")
    return "\n".join(out) + "\n"


def _verdict(result, p, probe_detail):
    if not isinstance(result, dict):
        return "(absent)"
    outcome = text(result.get("outcome"), 20)
    return "%s %s" % (p.verdict(outcome), probe_detail(result))
