"""A report as a readable terminal summary: what `memprobe show` prints, and `memprobe run`
on a terminal after the probes."""

from probe.render import text as _render
from probe.render.text import probe_detail, text

_MAX_GENERIC_LINES = 200


def render(doc: dict, palette: "_render.Palette | None" = None, name: "str | None" = None) -> str:
    """The summary as text (every document string passes through clean())."""
    p = palette or _render.Palette(False)
    out = _header_lines(doc, p, name)
    for section in (_capability_lines, _policy_lines, _probe_lines, _measurement_lines, _strategy_lines,
                    _recommendation_lines):
        out.extend(section(doc, p))
    return "\n".join(out) + "\n"


def _header_lines(doc, p, name):
    """Host label, host and process facts, the tool, and whether the report was redacted."""
    host = doc.get("host", {})
    process = doc.get("process", {})
    out = [p.paint("bold", _render.host_label(doc)) + (p.paint("dim", "  (%s)" % text(name)) if name else ""),
           "  " + host_line(host),
           "  process: " + _process_line(process)]
    tool = doc.get("tool") if isinstance(doc.get("tool"), dict) else {}
    out.append("  generated %s by %s %s" % (text(doc.get("generated_at")) or "?", text(tool.get("name")) or "?",
                                            text(tool.get("version")) or "?"))
    if doc.get("redacted"):
        out.append("  redacted: the host name is a pseudonym; user names, home directories, private "
                   "mount points and non-root uids are removed")
    return out


def _capability_lines(doc, p):
    summary = doc.get("summary") or {}
    if not summary:
        return []
    out = ["", p.paint("bold", "Capabilities")]
    width = max(len(text(c, 40)) for c in summary)
    for cap in _render.order_capabilities(list(summary)):
        entry = summary[cap]
        state = text(entry.get("state"), 20)
        out.append("  %s  %s  %s" % (text(cap, 40).ljust(width), p.verdict(state, state.ljust(12)),
                                     text(entry.get("text"))))
    return out


def _policy_lines(doc, p):
    policies = doc.get("policies")
    if not policies:
        return []
    # A policy's state says what is in force, not whether that is good: no colour.
    return ["", p.paint("bold", "Policies")] + _state_table(policies, _render.Palette(False))


def _probe_lines(doc, p):
    """Each probe's verdict in a few words, its attribution below it."""
    probes = doc.get("probes") or {}
    if not probes:
        return []
    out = ["", p.paint("bold", "Probes")]
    width = max(len(text(pid, 40)) for pid in probes)
    for pid, result in probes.items():
        outcome = text(result.get("outcome"), 20)
        out.append("  %s  %s  %s" % (text(pid, 40).ljust(width), p.verdict(outcome, outcome.ljust(12)),
                                     probe_detail(result)))
        for item in result.get("attribution") or ():
            out.append("  %s  %s" % (" " * width, p.paint("dim", "-> " + attribution_line(item))))
    return out


def _measurement_lines(doc, p):
    measurements = doc.get("measurements")
    if not isinstance(measurements, dict) or not measurements:
        return []
    out = ["", p.paint("bold", "Measurements")]
    for mid, entry in measurements.items():
        out.append("  %s  %s" % (text(mid, 40), _measurement_line(entry)))
    return out


def _strategy_lines(doc, p):
    strategies = doc.get("strategies")
    if not strategies:
        return []
    return ["", p.paint("bold", "Strategies")] + _state_table(strategies, p)


def _recommendation_lines(doc, p):
    recommendation = doc.get("recommendation")
    if not recommendation:
        return []
    if isinstance(recommendation, str):
        return ["", p.paint("bold", "Recommendation: ") + text(recommendation, 400)]
    return ["", p.paint("bold", "Recommendation")] + _generic(recommendation, "  ")


def host_line(host: dict) -> str:
    """Distribution, libc, Python, word size, page size, NX and provenance on one line."""
    parts = (_distribution_part(host), _pair_part(host.get("libc"), "name", "version"),
             _pair_part(host.get("python"), "implementation", "version"), _bits_part(host),
             _machine_part(host), _page_part(host), _nx_part(host), _provenance_part(host))
    return ", ".join(part for part in parts if part is not None)


# Each *_part: one fact of the host line, None when the report lacks it.

def _distribution_part(host):
    dist = host.get("distribution")
    if not isinstance(dist, dict) or not (dist.get("name") or dist.get("id")):
        return None
    return " ".join(text(v) for v in (dist.get("name") or dist.get("id"), dist.get("version")) if v)


def _pair_part(value, name_key, version_key):
    """'glibc 2.36' from {name: glibc, version: 2.36}."""
    if not isinstance(value, dict) or not value.get(name_key):
        return None
    return " ".join(text(v) for v in (value.get(name_key), value.get(version_key)) if v)


def _bits_part(host):
    bits = host.get("pointer_bits")
    if bits is None:
        return None
    return "%s-bit %s-endian" % (text(bits), text(host.get("byte_order")) or "?")


def _machine_part(host):
    if host.get("machine") and host.get("machine") != host.get("arch"):
        return "machine %s" % text(host.get("machine"))
    return None


def _page_part(host):
    return "page %s" % text(host.get("page_size")) if host.get("page_size") is not None else None


def _nx_part(host):
    nx = host.get("cpu_nx")
    return "CPU NX %s" % ("unknown" if nx is None else text(nx))


def _provenance_part(host):
    prov = host.get("provenance")
    if not isinstance(prov, dict) or not prov.get("method"):
        return None
    how = text(prov.get("method"))
    if prov.get("emulator"):
        how += " (%s)" % text(prov.get("emulator"))
    return how


def _uid(value):
    # A redacted report keeps 0 and turns any other id into null.
    return "non-root" if value is None else text(value)


def _process_line(process):
    if not isinstance(process, dict):
        return "?"
    parts = [_uid_part(process), _seccomp_part(process)]
    for key in ("no_new_privs", "mdwe", "personality", "read_implies_exec", "isolation"):
        if key in process:
            value = process.get(key)
            parts.append("%s %s" % (key, "unknown" if value is None else text(value)))
    return ", ".join(part for part in parts if part is not None) or "?"


def _uid_part(process):
    if "uid" not in process:
        return None
    uid = "uid %s" % _uid(process.get("uid"))
    if process.get("euid") != process.get("uid") and "euid" in process:
        uid += " (euid %s)" % _uid(process.get("euid"))
    return uid


def _seccomp_part(process):
    if "seccomp_mode" not in process:
        return None
    seccomp = "seccomp %s" % ("unknown" if process.get("seccomp_mode") is None
                              else text(process.get("seccomp_mode")))
    filters = process.get("seccomp_filters")
    if filters:
        seccomp += " (%s filter%s)" % (text(filters), "" if filters == 1 else "s")
    return seccomp


def attribution_line(item: object) -> str:
    """mechanism (confidence): evidence, on one line."""
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
    if not isinstance(section, dict) or not section or \
            not all(isinstance(_verdict_of(v), str) for v in section.values()):
        return _generic(section, "  ")
    width = max(len(text(k, 40)) for k in section)
    lines = []
    for name, entry in section.items():
        verdict = text(_verdict_of(entry), 20)
        lines.append("  %s  %s  %s" % (text(name, 40).ljust(width), p.verdict(verdict, verdict.ljust(12)),
                                       "; ".join(w for w in _state_words(entry) if w)))
    return lines


def _verdict_of(entry):
    return entry.get("verdict", entry.get("state")) if isinstance(entry, dict) else None


# Fields of a state-table entry shown in their own place, not among "the rest".
_STATE_FIELDS_APART = ("verdict", "state", "blocked_by", "detail", "text", "probes", "examples")


def _state_words(entry):
    """What blocks the entry, its other fields, then its sentences."""
    words = []
    blocked_by = entry.get("blocked_by")
    if blocked_by:
        words.append("by " + (", ".join(text(b, 40) for b in blocked_by) if isinstance(blocked_by, list)
                              else text(blocked_by, 80)))
    rest = {k: v for k, v in entry.items() if k not in _STATE_FIELDS_APART}
    if rest:
        words.append(_flat(rest))
    for key in ("detail", "text"):
        if isinstance(entry.get(key), str):
            words.append(text(entry[key], 300))
    return words


def _generic(value, indent, depth=0, budget=None):
    """Indented key: value lines for sections whose shape memprobe does not fix."""
    budget = budget if budget is not None else [_MAX_GENERIC_LINES]
    lines = []
    if isinstance(value, dict):
        _generic_mapping(value, indent, depth, budget, lines)
    elif isinstance(value, list):
        _generic_list(value, indent, depth, budget, lines)
    else:
        _emit(lines, indent, budget, indent + _flat(value))
    return lines


def _emit(lines, indent, budget, line):
    """Add a line while the budget (shared by the whole tree) lasts; '...' once when it runs out."""
    if budget[0] > 0:
        lines.append(line)
    elif budget[0] == 0:
        lines.append(indent + "...")
    budget[0] -= 1


def _nested(item, depth):
    return isinstance(item, (dict, list)) and item and depth < 6


def _generic_mapping(value, indent, depth, budget, lines):
    for key, item in value.items():
        if _nested(item, depth):
            _emit(lines, indent, budget, "%s%s:" % (indent, text(key, 60)))
            lines.extend(_generic(item, indent + "  ", depth + 1, budget))
        else:
            _emit(lines, indent, budget, "%s%s: %s" % (indent, text(key, 60), _flat(item)))


def _generic_list(value, indent, depth, budget, lines):
    for item in value:
        flat_mapping = isinstance(item, dict) and all(not isinstance(v, (dict, list)) for v in item.values())
        if not _nested(item, depth) or flat_mapping:
            _emit(lines, indent, budget, "%s- %s" % (indent, _flat(item)))
        else:
            _emit(lines, indent, budget, "%s-" % indent)
            lines.extend(_generic(item, indent + "  ", depth + 1, budget))
