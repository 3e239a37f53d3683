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

from probe import _output
from probe._collect import _render
from probe._collect._render import text
from probe._errors import EXIT_DIFFERENT, EXIT_OK

WORDS = ("detail", "text")  # free-text sentences: they follow the verdicts compared
PROBE_FIELDS = ("outcome", "step", "errno_name", "errno", "signal", "value", "exec_dropped", "attribution")
_ABSENT = object()
_SINGULAR = {"capabilities": "capability", "probes": "probe", "policies": "policy",
             "strategies": "strategy", "measurements": "measurement"}


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
    from probe._load import load_report

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
        out = _render.dump_machine(_machine(result), args.format)
    _render.write_text(args.output, out)
    return EXIT_OK if result["equal"] else EXIT_DIFFERENT


def _name(path):
    return "<stdin>" if path == "-" else text(path, 0)


def _flatten(value, prefix, out):
    """Leaves of nested plain data as {dotted.path: value}."""
    if isinstance(value, dict):
        if not value:
            out[prefix] = {}
        for key, item in value.items():
            _flatten(item, "%s.%s" % (prefix, key) if prefix else str(key), out)
    elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        for i, item in enumerate(value):
            _flatten(item, "%s[%d]" % (prefix, i), out)
    else:
        out[prefix] = value
    return out


def _attribution(result):
    items = result.get("attribution")
    if not isinstance(items, list):
        return _ABSENT
    shown = []
    for item in items:
        if isinstance(item, dict):
            mech = item.get("mechanism")
            shown.append("%s (%s)" % (mech, item.get("confidence")) if item.get("confidence") else str(mech))
    return sorted(shown)


def _probe_fields(result):
    fields = {}
    for key in PROBE_FIELDS:
        if key == "attribution":
            value = _attribution(result)
        else:
            value = result.get(key, _ABSENT)
        if key == "errno" and result.get("errno_name"):
            continue  # the name says it; numbers differ across OSes for one name
        if value is not _ABSENT:
            fields[key] = value
    return fields


def compare(a, b):
    """{'equal': bool, 'differences': [...], 'context': [...]} for two loaded reports."""
    diffs = []

    def record(section, key, va, vb, field=None):
        if va == vb:
            return
        item = {"section": section, "key": key}
        if field:
            item["field"] = field
        if va is not _ABSENT:
            item["a"] = va
        if vb is not _ABSENT:
            item["b"] = vb
        diffs.append(item)

    sa, sb = a.get("summary") or {}, b.get("summary") or {}
    for cap in _render.order_capabilities(_union(sa, sb)):
        record("capabilities", cap, _state(sa.get(cap)), _state(sb.get(cap)))

    pa, pb = a.get("probes") or {}, b.get("probes") or {}
    for pid in _union(pa, pb):
        if pid not in pa or pid not in pb:
            record("probes", pid, _outcome(pa.get(pid)), _outcome(pb.get(pid)), "outcome")
            continue
        fa, fb = _probe_fields(pa[pid]), _probe_fields(pb[pid])
        for field in [f for f in PROBE_FIELDS if f in fa or f in fb]:
            record("probes", pid, fa.get(field, _ABSENT), fb.get(field, _ABSENT), field)

    for section in ("policies", "strategies", "recommendation"):
        fa = _flatten(a[section], "", {}) if section in a else {}
        fb = _flatten(b[section], "", {}) if section in b else {}
        for key in _union(fa, fb):
            if key.rsplit(".", 1)[-1] in WORDS:
                continue
            record(section, key or section, fa.get(key, _ABSENT), fb.get(key, _ABSENT))

    ma, mb = a.get("measurements") or {}, b.get("measurements") or {}
    for mid in _union(ma, mb):
        record("measurements", mid, _outcome(ma.get(mid)), _outcome(mb.get(mid)), "outcome")

    context = []
    for section in ("host", "process"):
        fa = _flatten(a.get(section) or {}, section, {})
        fb = _flatten(b.get(section) or {}, section, {})
        for key in _union(fa, fb):
            if fa.get(key, _ABSENT) != fb.get(key, _ABSENT):
                item = {"key": key}
                if key in fa:
                    item["a"] = fa[key]
                if key in fb:
                    item["b"] = fb[key]
                context.append(item)
    return {"equal": not diffs, "differences": diffs, "context": context}


def _union(a, b):
    return list(a) + [k for k in b if k not in a]


def _state(entry):
    if entry is None:
        return _ABSENT
    return entry.get("state") if isinstance(entry, dict) else entry


def _outcome(entry):
    if entry is None:
        return _ABSENT
    return entry.get("outcome") if isinstance(entry, dict) else entry


def _machine(result):
    return {"equal": result["equal"], "a": result["a"], "b": result["b"],
            "differences": result["differences"], "context": result["context"]}


def _value(item, side):
    if side not in item:
        return "(absent)"
    value = item[side]
    if isinstance(value, list):
        return "[%s]" % ", ".join(text(v, 80) for v in value)
    if value is None:
        return "null"
    return text(value)


def render_text(result, a, b, palette):
    from probe._collect.show import probe_detail

    p = palette
    out = ["--- A: %s  %s" % (text(result["a"]["file"]), result["a"]["host"]),
           "+++ B: %s  %s" % (text(result["b"]["file"]), result["b"]["host"])]
    if result["context"]:
        out.append(p.paint("dim", "context (shown, not compared):"))
        for item in result["context"]:
            out.append(p.paint("dim", "  %s: %s -> %s" % (text(item["key"]), _value(item, "a"), _value(item, "b"))))
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
                    out.append("    attribution: %s -> %s" % (_value(attr, "a"), _value(attr, "b")))
        else:
            for item in items:
                label = item["key"] + ("." + item["field"] if item.get("field") else "")
                va, vb = _value(item, "a"), _value(item, "b")
                if label == section:  # a one-value section such as the recommendation
                    out.append("  %s -> %s" % (p.verdict(va), p.verdict(vb)))
                else:
                    out.append("  %s: %s -> %s" % (text(label), p.verdict(va), p.verdict(vb)))
    if by_section:
        counts = []
        for section, items in by_section.items():
            n = len({re.split(r"[.\[]", i["key"], maxsplit=1)[0] for i in items})
            counts.append("%d %s" % (n, section if n != 1 else _SINGULAR.get(section, section)))
        out.append("differ in " + ", ".join(counts))
    else:
        out.append("no differences (generated_at, durations, measured numbers and details are not compared)")
    return "\n".join(out) + "\n"


def _verdict(result, p, probe_detail):
    if not isinstance(result, dict):
        return "(absent)"
    outcome = text(result.get("outcome"), 20)
    return "%s %s" % (p.verdict(outcome), probe_detail(result))
