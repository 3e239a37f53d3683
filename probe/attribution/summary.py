"""The report's `summary`: one line per capability, from the probe verdicts.

    summarise(probes, policies=None) -> {capability: {"state", "text"}}

Pure: the policies only decide what a SIGKILL means (a PaX PAGEEXEC kill, or an outside
kill such as the OOM killer that says nothing about the capability).
"""

from probe.engine.probes import REGISTRY
from probe.mechanisms import sigkill_is_pax
from probe.vocab import CAPABILITIES, outcome_state

# How the summary names each capability (probe.vocab.CAPABILITIES). The probes behind a
# capability are those that declare it (probe.engine.probes: `capability`).
NAMES = {
    "nx": "NX", "heap_nx": "heap NX", "stack_nx": "stack NX",
    "wx_flip": "W->X flip (mmap RW, write, mprotect RX)",
    "rwx_mapping": "RWX mapping (mmap RWX)",
    "rwx_flip": "RW->RWX mprotect",
    "rx_mapping": "anonymous RX mapping",
    "dual_mapping": "double mapping (RW view + RX view)",
    "code_repatching": "re-patching live code (RX->RW->RX)",
    "rwx_patching": "patching live code while executable (RX->RWX)",
    "file_text_patching": "patching file-backed code (in-process hot patching, hooks)",
    "heap_flip": "making heap memory executable (mprotect RWX)",
    "stack_flip": "making stack memory executable (mprotect RWX)",
    "read_implies_exec": "READ_IMPLIES_EXEC personality (RW memory runs)",
}
# The protections among them (stated enforced/not_enforced), and what runs without each.
PROTECTIONS = {"nx": "code in plain RW memory", "heap_nx": "code in malloc'd memory",
               "stack_nx": "code on the stack"}

OUTSIDE_KILL = "killed from outside (e.g. the OOM killer): no detector says PaX is active"


def capability_probes() -> dict:
    """capability -> the ids of the probes that feed it, in summary and registry order."""
    return {cap: tuple(p.id for p in REGISTRY if p.capability == cap) for cap in CAPABILITIES}


def _state(verdict, pax_kills):
    """works/blocked/broken/unknown of one verdict. A SIGKILL blocks only where PaX
    PAGEEXEC is known to kill; anywhere else it proves nothing either way."""
    return outcome_state(verdict["outcome"], pax_kills)


def _why(verdict, pax_kills=True):
    if verdict["outcome"] == "denied":
        if verdict.get("exec_dropped"):
            return "PROT_EXEC silently dropped at %s" % verdict["step"]
        return "%s refused with %s" % (verdict["step"], verdict["errno_name"])
    if verdict["outcome"] == "killed" and not pax_kills:
        return "%s at step %s, %s" % (verdict["signal"], verdict["step"], OUTSIDE_KILL)
    if verdict["outcome"] in ("crashed", "killed"):
        return "%s at step %s" % (verdict["signal"], verdict["step"])
    if verdict["outcome"] == "wrong_result":
        return "returned %r instead of %r" % (verdict["value"], verdict["expected"])
    return "%s: %s" % (verdict["outcome"], verdict.get("detail") or "no detail")


def _nx_line(name, what, verdict, pax_kills):
    outcome = verdict["outcome"] if verdict else "missing"
    if outcome == "crashed" or (outcome == "killed" and pax_kills):
        return "enforced", "%s enforced: %s crashes (%s)" % (name, what, verdict["signal"])
    if outcome == "allowed":
        return "not_enforced", "%s not enforced: %s runs" % (name, what)
    if outcome == "denied":
        return "enforced", "%s enforced: %s is refused before it runs (%s)" % (name, what, _why(verdict))
    return "unknown", "%s unknown: %s" % (name, "not probed" if verdict is None
                                          else _why(verdict, pax_kills))


def summarise(probes: dict, policies: "dict | None" = None) -> "dict[str, dict[str, str]]":
    """The summary lines; `policies` (the detectors' section) tells a PaX kill from an
    outside one."""
    pax_kills = sigkill_is_pax({"policies": policies or {}})
    summary = {}
    for cap, ids in capability_probes().items():
        verdicts = [(i, probes[i]) for i in ids if i in probes]
        if verdicts:
            state, text = _line(cap, len(ids) > 1, verdicts, pax_kills)
            summary[cap] = {"state": state, "text": text}
    return summary


def _line(cap, variants, verdicts, pax_kills):
    """(state, text) of one capability from the verdicts of its probes that ran;
    `variants`: several probes feed it (any one working is enough)."""
    if cap in PROTECTIONS:
        return _nx_line(NAMES[cap], PROTECTIONS[cap], verdicts[0][1], pax_kills)
    if variants:
        return _any_line(NAMES[cap], verdicts, pax_kills)
    state = _state(verdicts[0][1], pax_kills)
    if state == "works":
        return state, "%s works" % NAMES[cap]
    return state, "%s %s: %s" % (NAMES[cap], state, _why(verdicts[0][1], pax_kills))


def _variant(probe_id):
    """A probe's name among its capability's variants (dual_map_memfd: memfd)."""
    return probe_id.replace("dual_map_", "")


def _any_line(name, verdicts, pax_kills):
    """A capability with several variants works when any of them works."""
    works = [i for i, v in verdicts if v["outcome"] == "allowed"]
    if works:
        return "works", _works_via(name, works, verdicts, pax_kills)
    states = [_state(v, pax_kills) for _, v in verdicts]
    state = next((s for s in ("blocked", "broken") if s in states), "unknown")
    return state, "%s %s: %s" % (name, state, "; ".join(
        "%s: %s" % (_variant(i), _why(v, pax_kills)) for i, v in verdicts))


def _works_via(name, works, verdicts, pax_kills):
    text = "%s works via %s" % (name, ", ".join(_variant(i) for i in works))
    others = [(i, v) for i, v in verdicts if i not in works]
    if others:
        text += "; not via %s" % "; ".join("%s (%s)" % (_variant(i), _why(v, pax_kills)) for i, v in others)
    return text
