"""Deciding expectations against a loaded report: holds, fails or undecided.

A group decides from its members: `all` fails when one fails, else is undecided
when one is, else holds; `any` holds when one holds, else is undecided when one
is, else fails. A report where no expectation applies (every section's `when`
missed and nothing else in the file) is undecided: a gate that checked nothing
must not pass.
"""

from probe.gate.expect import Group, Section
from probe.gate.expect_entry import BLOCKING, mechanism
from probe.render.text import text
from probe.errors import EXIT_DIFFERENT, EXIT_OK, EXIT_UNDECIDED
from probe.vocab import FAILS, HOLDS, UNDECIDED  # noqa: F401 - also this module's API


def applicable(items: list, report: dict) -> list:
    """The items that apply to this report: sections whose `when` matches are opened."""
    out = []
    for item in items:
        if isinstance(item, Section):
            if item.applies(report):
                out.extend(item.items)
        else:
            out.append(item)
    return out


def sections(items: list, report: dict) -> "list[tuple[Section, bool]]":
    """[(section, applies)] in file order."""
    return [(item, item.applies(report)) for item in items if isinstance(item, Section)]


def check(expectations: list, report: dict) -> "list[tuple[object, str, str]]":
    """[(expectation, verdict, found)] in file order, for the items that apply."""
    return [(exp,) + evaluate(exp, report) for exp in applicable(expectations, report)]


def exit_status(results: list) -> int:
    """The check's exit code: fails over undecided over holds; nothing checked is undecided."""
    verdicts = {verdict for _, verdict, _ in results}
    if FAILS in verdicts:
        return EXIT_DIFFERENT
    if UNDECIDED in verdicts or not results:
        return EXIT_UNDECIDED
    return EXIT_OK


def evaluate(exp: object, report: dict) -> "tuple[str, str]":
    """(verdict, what was found) for one item against a loaded report."""
    if isinstance(exp, Group):
        return _group(exp, report)
    if exp.kind == "strategy":
        return _strategy(exp, report)
    if exp.kind == "capability":
        return _capability(exp, report)
    return _probe(exp, report)


def _combine(mode, verdicts):
    verdicts = set(verdicts)
    if mode == "any":
        return HOLDS if HOLDS in verdicts else UNDECIDED if UNDECIDED in verdicts else FAILS
    return FAILS if FAILS in verdicts else UNDECIDED if UNDECIDED in verdicts else HOLDS


def _group(group, report):
    member_verdicts = []
    found = []
    for member in group.members:
        results = [(item,) + evaluate(item, report) for item in member]
        member_verdicts.append(_combine("all", [verdict for _, verdict, _ in results]))
        found.extend(("%s [%s]" if isinstance(item, Group) else "%s %s") % (_name(item), seen)
                     for item, _, seen in results)
    return _combine(group.mode, member_verdicts), "; ".join(found)


def _name(item):
    if isinstance(item, Group):
        return item.mode
    if item.kind == "strategy":
        return "strategies.%s" % text(item.key, 60)
    return text(item.key, 60)


def _capability(exp, report):
    entry = (report.get("summary") or {}).get(exp.key)
    if entry is None:
        return UNDECIDED, "capability not in the report"
    state = entry.get("state")
    found = "%s (%s)" % (text(state), text(entry.get("text"))) if entry.get("text") else text(state)
    if state in exp.values:
        return HOLDS, found
    if state == "unknown":
        return UNDECIDED, found
    return FAILS, found


def _strategy(exp, report):
    section = report.get("strategies")
    entry = section.get(exp.key) if isinstance(section, dict) else None
    if not isinstance(entry, dict):
        return UNDECIDED, "strategy not in the report"
    verdict = entry.get("verdict")
    blocked_by = [mechanism(m) for m in entry.get("blocked_by") or () if isinstance(m, str)]
    found = text(verdict) + _by(blocked_by)
    if exp.values and verdict not in exp.values:
        return _missed(verdict), found
    if exp.blocked_by:
        return _blocked_by(exp, verdict, blocked_by, found)
    return HOLDS, found


def _by(blocked_by):
    return " by %s" % ", ".join(text(m, 60) for m in blocked_by) if blocked_by else ""


def _missed(verdict):
    """A strategy verdict other than the one expected: undecided only when the report could not tell."""
    return UNDECIDED if verdict == "unknown" else FAILS


def _blocked_by(exp, verdict, blocked_by, found):
    """`blocked_by:` holds when the strategy is blocked and one of its mechanisms is named."""
    if verdict != "blocked":
        return _missed(verdict), found
    if any(_same_mechanism(m, exp.blocked_by) for m in blocked_by):
        return HOLDS, found
    if not blocked_by or blocked_by == ["unknown"]:
        return UNDECIDED, found + "; the report names no mechanism"
    return FAILS, found


def _same_mechanism(name, wanted):
    """'pax' also takes 'pax-mprotect': an expectation may name a family of mechanisms."""
    return any(name == want or name.startswith(want + "-") for want in wanted)


def _probe(exp, report):
    result = (report.get("probes") or {}).get(exp.key)
    if result is None:
        return UNDECIDED, "probe not in the report"
    from probe.render.text import probe_detail

    outcome = result.get("outcome")
    found = "%s %s" % (text(outcome), probe_detail(result))
    if not _probe_matches(exp, result):
        return (UNDECIDED if outcome in ("skipped", "error") else FAILS), found
    if exp.denied_by:
        return _attributed(exp, result, found)
    return HOLDS, found


def _probe_matches(exp, result):
    """The outcome, errno, signal and step are among those expected (attribution apart)."""
    wanted = exp.values or (BLOCKING if exp.denied_by else None)
    if wanted and result.get("outcome") not in wanted:
        return False
    fields = (("errno", exp.errno), ("signal", exp.signal), ("step", exp.step))
    return all(_field_matches(result, field, values) for field, values in fields if values)


def _field_matches(result, field, values):
    """errno and signal match by name or by number; step by name."""
    name = result.get("errno_name" if field == "errno" else field)
    number = result.get("errno" if field == "errno" else "signal_number")
    return any(v == name or (isinstance(v, int) and v == number) for v in values)


def _attributed(exp, result, found):
    items = result.get("attribution")
    if not isinstance(items, list) or not items:
        return UNDECIDED, found + "; the report names no mechanism"
    names = []
    for item in items:
        mech = mechanism(item.get("mechanism", ""))
        confidence = item.get("confidence")
        names.append(text("%s (%s)" % (mech, confidence) if confidence else mech, 60))
        if _same_mechanism(mech, exp.denied_by) and _confident(confidence, exp.confidence):
            return HOLDS, found + "; by " + ", ".join(names)
    found += "; by " + ", ".join(names)
    decided = [i for i in items if i.get("confidence") in ("confirmed", "likely")]
    return (FAILS if decided else UNDECIDED), found


def _confident(confidence, accepted):
    """An attribution without a confidence counts as 'unknown'."""
    return confidence in accepted or confidence is None and "unknown" in accepted
