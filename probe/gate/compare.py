"""compare(): what differs between two reports (what `memprobe diff` and the API's diff()
report)."""

from probe.render import text as _render
from probe.render.text import text

WORDS = ("detail", "text")  # free-text sentences: they follow the verdicts compared
PROBE_FIELDS = ("outcome", "step", "errno_name", "errno", "signal", "value", "exec_dropped", "attribution")
_ABSENT = object()
SINGULAR = {"capabilities": "capability", "probes": "probe", "policies": "policy",
             "strategies": "strategy", "measurements": "measurement"}


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


def compare(a: dict, b: dict) -> dict:
    """{'equal': bool, 'differences': [...], 'context': [...]} for two loaded reports."""
    diffs = []
    _compare_capabilities(a, b, diffs)
    _compare_probes(a, b, diffs)
    _compare_trees(a, b, diffs)
    _compare_measurements(a, b, diffs)
    context = []
    for section in ("host", "process"):
        context.extend(_context(a, b, section))
    return {"equal": not diffs, "differences": diffs, "context": context}


def _record(diffs, section, key, va, vb, field=None):
    """One difference (nothing when equal); a side the report lacks is left out of the item."""
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


def _compare_capabilities(a, b, diffs):
    sa, sb = a.get("summary") or {}, b.get("summary") or {}
    for cap in _render.order_capabilities(_union(sa, sb)):
        _record(diffs, "capabilities", cap, _state(sa.get(cap)), _state(sb.get(cap)))


def _compare_probes(a, b, diffs):
    pa, pb = a.get("probes") or {}, b.get("probes") or {}
    for pid in _union(pa, pb):
        if pid not in pa or pid not in pb:
            _record(diffs, "probes", pid, _outcome(pa.get(pid)), _outcome(pb.get(pid)), "outcome")
            continue
        fa, fb = _probe_fields(pa[pid]), _probe_fields(pb[pid])
        for field in [f for f in PROBE_FIELDS if f in fa or f in fb]:
            _record(diffs, "probes", pid, fa.get(field, _ABSENT), fb.get(field, _ABSENT), field)


def _compare_trees(a, b, diffs):
    """policies, strategies and the recommendation leaf by leaf, free text left out."""
    for section in ("policies", "strategies", "recommendation"):
        fa = _flatten(a[section], "", {}) if section in a else {}
        fb = _flatten(b[section], "", {}) if section in b else {}
        for key in _union(fa, fb):
            if key.rsplit(".", 1)[-1] in WORDS:
                continue
            _record(diffs, section, key or section, fa.get(key, _ABSENT), fb.get(key, _ABSENT))


def _compare_measurements(a, b, diffs):
    ma, mb = a.get("measurements") or {}, b.get("measurements") or {}
    for mid in _union(ma, mb):
        _record(diffs, "measurements", mid, _outcome(ma.get(mid)), _outcome(mb.get(mid)), "outcome")


def _context(a, b, section):
    """The host or process leaves that differ: they explain differences, they are not one."""
    fa = _flatten(a.get(section) or {}, section, {})
    fb = _flatten(b.get(section) or {}, section, {})
    context = []
    for key in _union(fa, fb):
        if fa.get(key, _ABSENT) != fb.get(key, _ABSENT):
            item = {"key": key}
            if key in fa:
                item["a"] = fa[key]
            if key in fb:
                item["b"] = fb[key]
            context.append(item)
    return context


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


def machine_form(result: dict) -> dict:
    return {"equal": result["equal"], "a": result["a"], "b": result["b"],
            "differences": result["differences"], "context": result["context"]}


def side_value(item: dict, side: str) -> str:
    if side not in item:
        return "(absent)"
    value = item[side]
    if isinstance(value, list):
        return "[%s]" % ", ".join(text(v, 80) for v in value)
    if value is None:
        return "null"
    return text(value)
