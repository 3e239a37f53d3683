"""`memprobe diff A B`: what differs between two reports.

Compared: capability states (summary), probe verdicts (outcome, step, errno,
signal, returned value, dropped PROT_EXEC, attribution), policies, strategies,
recommendation and which measurements were taken. Not compared: generated_at,
durations, measured numbers, free-text details and the tool version. Host and
process fields are shown as context when they differ but do not make reports
differ: comparing two hosts is what diff is for.
Exit status: 0 equivalent, 2 different, 1 unreadable input.
"""

import argparse
import re
import sys

from probe.report import output as _output
from probe.render import text as _render
from probe.render.text import text
from probe.errors import EXIT_DIFFERENT, EXIT_OK
from probe.gate.compare import SINGULAR, compare, machine_form, side_value  # noqa: F401 - compare: also the API


def add_arguments(parser: "argparse.ArgumentParser") -> None:
    parser.add_argument("a", metavar="A", help="first report (YAML or JSON)")
    parser.add_argument("b", metavar="B", help="second report")
    parser.add_argument("--format", "-f", choices=("text", "yaml", "json"),
                        help="text for people (default, unless --output ends in .yaml, .yml or .json), "
                        "yaml or json for programs")
    parser.add_argument("--output", "-o", metavar="PATH", help="write the diff to PATH instead of stdout")
    _render.add_colour_argument(parser)


def main(args: "argparse.Namespace") -> int:
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


def render_text(result: dict, a: dict, b: dict, palette: "_render.Palette") -> str:
    """The diff for people: context first, then the differences section by section, then a count."""
    out = ["--- A: %s  %s" % (text(result["a"]["file"]), result["a"]["host"]),
           "+++ B: %s  %s" % (text(result["b"]["file"]), result["b"]["host"])]
    out.extend(_context_lines(result["context"], palette))
    by_section = {}
    for item in result["differences"]:
        by_section.setdefault(item["section"], []).append(item)
    for section, items in by_section.items():
        out.append(palette.paint("bold", "%s:" % section))
        if section == "probes":
            out.extend(_probe_lines(items, a.get("probes") or {}, b.get("probes") or {}, palette))
        else:
            out.extend(_value_lines(section, items, palette))
    out.append(_count_line(by_section))
    return "\n".join(out) + "\n"


def _context_lines(context, p):
    if not context:
        return []
    out = [p.paint("dim", "context (shown, not compared):")]
    for item in context:
        out.append(p.paint("dim", "  %s: %s -> %s" % (text(item["key"]), side_value(item, "a"), side_value(item, "b"))))
    return out


def _probe_lines(items, pa, pb, p):
    """One line per probe with both verdicts in full, and its attribution when that differs."""
    from probe.render.text import probe_detail

    out = []
    done = set()
    for item in items:
        pid = item["key"]
        if pid in done:
            continue
        done.add(pid)
        out.append("  %s: %s -> %s" % (text(pid), _verdict(pa.get(pid), p, probe_detail),
                                       _verdict(pb.get(pid), p, probe_detail)))
        for attr in (i for i in items if i["key"] == pid and i.get("field") == "attribution"):
            out.append("    attribution: %s -> %s" % (side_value(attr, "a"), side_value(attr, "b")))
    return out


def _value_lines(section, items, p):
    out = []
    for item in items:
        label = item["key"] + ("." + item["field"] if item.get("field") else "")
        va, vb = side_value(item, "a"), side_value(item, "b")
        if label == section:  # a one-value section such as the recommendation
            out.append("  %s -> %s" % (p.verdict(va), p.verdict(vb)))
        else:
            out.append("  %s: %s -> %s" % (text(label), p.verdict(va), p.verdict(vb)))
    return out


def _count_line(by_section):
    """'differ in 2 capabilities, 1 probe': entries counted once, however many of their fields differ."""
    if not by_section:
        return "no differences (generated_at, durations, measured numbers and details are not compared)"
    counts = []
    for section, items in by_section.items():
        n = len({re.split(r"[.\[]", i["key"], maxsplit=1)[0] for i in items})
        counts.append("%d %s" % (n, section if n != 1 else SINGULAR.get(section, section)))
    return "differ in " + ", ".join(counts)


def _verdict(result, p, probe_detail):
    if not isinstance(result, dict):
        return "(absent)"
    outcome = text(result.get("outcome"), 20)
    return "%s %s" % (p.verdict(outcome), probe_detail(result))
