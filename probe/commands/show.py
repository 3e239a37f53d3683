"""`memprobe show REPORT`: a report as a readable terminal summary."""

import sys

from probe.report import output as _output
from probe.render import text as _render
from probe.render.text import probe_detail, text  # noqa: F401 - probe_detail: shown by diff and check too

_MAX_GENERIC_LINES = 200


def add_arguments(parser):
    parser.add_argument("report", metavar="REPORT", help="report file (YAML or JSON; '-' for stdin)")
    _render.add_colour_argument(parser)
    _render.add_perspective_argument(parser)


def main(args):
    _render.tolerant_stdout()
    from probe.report.load import load_report

    doc = load_report(args.report)
    palette = _render.Palette.for_stream(sys.stdout, args.colour, args.perspective)
    name = "<stdin>" if args.report == "-" else args.report
    _output.write_stdout(render(doc, palette, name))
    return 0


def render(doc, palette=None, name=None):
    """The summary as text (every document string passes through clean())."""
    p = palette or _render.Palette(False)
    out = []
    add = out.append
    host = doc.get("host", {})
    process = doc.get("process", {})
    add(p.paint("bold", _render.host_label(doc)) + (p.paint("dim", "  (%s)" % text(name)) if name else ""))
    add("  " + _host_line(host))
    add("  process: " + _process_line(process))
    tool = doc.get("tool") if isinstance(doc.get("tool"), dict) else {}
    add("  generated %s by %s %s" % (text(doc.get("generated_at")) or "?", text(tool.get("name")) or "?",
                                     text(tool.get("version")) or "?"))
    if doc.get("redacted"):
        add("  redacted: the host name is a pseudonym; user names, home directories, private "
            "mount points and non-root uids are removed")

    summary = doc.get("summary") or {}
    if summary:
        add("")
        add(p.paint("bold", "Capabilities"))
        width = max(len(text(c, 40)) for c in summary)
        for cap in _render.order_capabilities(list(summary)):
            entry = summary[cap]
            state = text(entry.get("state"), 20)
            add("  %s  %s  %s" % (text(cap, 40).ljust(width), p.verdict(state, state.ljust(12)),
                                  text(entry.get("text"))))

    policies = doc.get("policies")
    if policies:
        add("")
        add(p.paint("bold", "Policies"))
        out.extend(_state_table(policies, _render.Palette(False)))

    probes = doc.get("probes") or {}
    if probes:
        add("")
        add(p.paint("bold", "Probes"))
        width = max(len(text(pid, 40)) for pid in probes)
        for pid, result in probes.items():
            outcome = text(result.get("outcome"), 20)
            add("  %s  %s  %s" % (text(pid, 40).ljust(width), p.verdict(outcome, outcome.ljust(12)),
                                  probe_detail(result)))
            for item in result.get("attribution") or ():
                add("  %s  %s" % (" " * width, p.paint("dim", "-> " + attribution_line(item))))

    measurements = doc.get("measurements")
    if isinstance(measurements, dict) and measurements:
        add("")
        add(p.paint("bold", "Measurements"))
        for mid, entry in measurements.items():
            add("  %s  %s" % (text(mid, 40), _measurement_line(entry)))

    strategies = doc.get("strategies")
    if strategies:
        add("")
        add(p.paint("bold", "Strategies"))
        out.extend(_state_table(strategies, p))
    recommendation = doc.get("recommendation")
    if recommendation:
        add("")
        if isinstance(recommendation, str):
            add(p.paint("bold", "Recommendation: ") + text(recommendation, 400))
        else:
            add(p.paint("bold", "Recommendation"))
            out.extend(_generic(recommendation, "  "))
    return "\n".join(out) + "\n"


def _host_line(host):
    parts = []
    dist = host.get("distribution")
    if isinstance(dist, dict) and (dist.get("name") or dist.get("id")):
        parts.append(" ".join(text(v) for v in (dist.get("name") or dist.get("id"), dist.get("version")) if v))
    libc = host.get("libc")
    if isinstance(libc, dict) and libc.get("name"):
        parts.append(" ".join(text(v) for v in (libc.get("name"), libc.get("version")) if v))
    python = host.get("python")
    if isinstance(python, dict) and python.get("implementation"):
        parts.append(" ".join(text(v) for v in (python.get("implementation"), python.get("version")) if v))
    bits = host.get("pointer_bits")
    if bits is not None:
        parts.append("%s-bit %s-endian" % (text(bits), text(host.get("byte_order")) or "?"))
    if host.get("machine") and host.get("machine") != host.get("arch"):
        parts.append("machine %s" % text(host.get("machine")))
    if host.get("page_size") is not None:
        parts.append("page %s" % text(host.get("page_size")))
    nx = host.get("cpu_nx")
    parts.append("CPU NX %s" % ("unknown" if nx is None else text(nx)))
    prov = host.get("provenance")
    if isinstance(prov, dict) and prov.get("method"):
        how = text(prov.get("method"))
        if prov.get("emulator"):
            how += " (%s)" % text(prov.get("emulator"))
        parts.append(how)
    return ", ".join(parts)


def _uid(value):
    # A redacted report keeps 0 and turns any other id into null.
    return "non-root" if value is None else text(value)


def _process_line(process):
    if not isinstance(process, dict):
        return "?"
    parts = []
    if "uid" in process:
        uid = "uid %s" % _uid(process.get("uid"))
        if process.get("euid") != process.get("uid") and "euid" in process:
            uid += " (euid %s)" % _uid(process.get("euid"))
        parts.append(uid)
    if "seccomp_mode" in process:
        seccomp = "seccomp %s" % ("unknown" if process.get("seccomp_mode") is None
                                  else text(process.get("seccomp_mode")))
        filters = process.get("seccomp_filters")
        if filters:
            seccomp += " (%s filter%s)" % (text(filters), "" if filters == 1 else "s")
        parts.append(seccomp)
    for key, label in (("no_new_privs", "no_new_privs"), ("mdwe", "mdwe"), ("personality", "personality"),
                       ("read_implies_exec", "read_implies_exec"), ("isolation", "isolation")):
        if key in process:
            value = process.get(key)
            parts.append("%s %s" % (label, "unknown" if value is None else text(value)))
    return ", ".join(parts) or "?"


def attribution_line(item):
    if not isinstance(item, dict):
        return text(item)
    line = text(item.get("mechanism"), 60) or "?"
    if item.get("confidence"):
        line += " (%s)" % text(item.get("confidence"), 20)
    evidence = item.get("evidence")
    if isinstance(evidence, list):
        line += ": " + "; ".join(_flat(e, 200) for e in evidence[:10])
    elif evidence:
        line += ": " + _flat(evidence)
    return line


def _flat(value, limit=300):
    """Any plain value as one line."""
    if isinstance(value, dict):
        body = "; ".join("%s %s" % (text(k, 40), "null" if v is None else _flat(v, 80))
                         for k, v in list(value.items())[:20])
    elif isinstance(value, list):
        body = "; ".join(_flat(v, 80) for v in value[:20])
    else:
        body = text(value, limit)
    return body if len(body) <= limit else body[: limit - 3] + "..."


def _measurement_line(entry):
    if not isinstance(entry, dict):
        return text(entry)
    outcome = text(entry.get("outcome"), 20) or "?"
    if entry.get("median_ns") is not None:
        line = "median %s ns" % text(entry.get("median_ns"))
        if entry.get("cycles") is not None:
            line += " over %s cycles" % text(entry.get("cycles"))
        return line
    return "%s%s" % (outcome, (": " + text(entry.get("detail"))) if entry.get("detail") else "")


def _state_table(section, p):
    """One line per entry of a {name: {verdict|state: ..., ...}} section (strategies,
    policies): name, verdict, what blocks it, the rest in words; other shapes generically."""
    def verdict_of(entry):
        return entry.get("verdict", entry.get("state")) if isinstance(entry, dict) else None

    if not isinstance(section, dict) or not section or \
            not all(isinstance(verdict_of(v), str) for v in section.values()):
        return _generic(section, "  ")
    width = max(len(text(k, 40)) for k in section)
    lines = []
    for name, entry in section.items():
        verdict = text(verdict_of(entry), 20)
        words = []
        blocked_by = entry.get("blocked_by")
        if blocked_by:
            words.append("by " + (", ".join(text(b, 40) for b in blocked_by) if isinstance(blocked_by, list)
                                  else text(blocked_by, 80)))
        rest = {k: v for k, v in entry.items()
                if k not in ("verdict", "state", "blocked_by", "detail", "text", "probes", "examples")}
        if rest:
            words.append(_flat(rest))
        for key in ("detail", "text"):
            if isinstance(entry.get(key), str):
                words.append(text(entry[key], 300))
        lines.append("  %s  %s  %s" % (text(name, 40).ljust(width), p.verdict(verdict, verdict.ljust(12)),
                                       "; ".join(w for w in words if w)))
    return lines


def _generic(value, indent, depth=0, budget=None):
    """Indented key: value lines for sections whose shape memprobe does not fix."""
    budget = budget if budget is not None else [_MAX_GENERIC_LINES]
    lines = []

    def emit(line):
        if budget[0] > 0:
            lines.append(line)
        elif budget[0] == 0:
            lines.append(indent + "...")
        budget[0] -= 1

    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item and depth < 6:
                emit("%s%s:" % (indent, text(key, 60)))
                lines.extend(_generic(item, indent + "  ", depth + 1, budget))
            else:
                emit("%s%s: %s" % (indent, text(key, 60), _flat(item)))
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (dict, list)) and item and depth < 6:
                if isinstance(item, dict) and all(not isinstance(v, (dict, list)) for v in item.values()):
                    emit("%s- %s" % (indent, _flat(item)))
                else:
                    emit("%s-" % indent)
                    lines.extend(_generic(item, indent + "  ", depth + 1, budget))
            else:
                emit("%s- %s" % (indent, _flat(item)))
    else:
        emit(indent + _flat(value))
    return lines
