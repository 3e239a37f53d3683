"""The report's `summary`: one line per capability, from the probe verdicts.

    summarise(probes, policies=None) -> {capability: {"state", "text"}}

Pure: the policies only decide what a SIGKILL means (a PaX PAGEEXEC kill, or an outside
kill such as the OOM killer that says nothing about the capability).
"""

from probe.mechanisms import sigkill_is_pax

# capability -> (probe ids, kind, what it means in words)
CAPABILITIES = [
    ("nx", ("exec_rw",), "nx", "NX", "code in plain RW memory"),
    ("heap_nx", ("exec_heap",), "nx", "heap NX", "code in malloc'd memory"),
    ("stack_nx", ("exec_stack",), "nx", "stack NX", "code on the stack"),
    ("wx_flip", ("flip_rw_rx",), "works", "W->X flip (mmap RW, write, mprotect RX)", None),
    ("rwx_mapping", ("map_rwx",), "works", "RWX mapping (mmap RWX)", None),
    ("rwx_flip", ("flip_rw_rwx",), "works", "RW->RWX mprotect", None),
    ("rx_mapping", ("map_rx",), "works", "anonymous RX mapping", None),
    ("dual_mapping", ("dual_map_memfd", "dual_map_shm", "dual_map_file"), "any",
     "double mapping (RW view + RX view)", None),
    ("code_repatching", ("repatch_rx",), "works", "re-patching live code (RX->RW->RX)", None),
    ("rwx_patching", ("patch_rwx",), "works", "patching live code while executable (RX->RWX)", None),
    ("file_text_patching", ("patch_file_text",), "works",
     "patching file-backed code (in-process hot patching, hooks)", None),
    ("heap_flip", ("flip_heap",), "works", "making heap memory executable (mprotect RWX)", None),
    ("stack_flip", ("flip_stack",), "works", "making stack memory executable (mprotect RWX)", None),
    ("read_implies_exec", ("read_implies_exec",), "works",
     "READ_IMPLIES_EXEC personality (RW memory runs)", None),
]

_WORKS = {"allowed": "works", "denied": "blocked", "crashed": "blocked", "killed": "blocked",
          "wrong_result": "broken"}
OUTSIDE_KILL = "killed from outside (e.g. the OOM killer): no detector says PaX is active"


def _state(verdict, pax_kills):
    """works/blocked/broken/unknown of one verdict. A SIGKILL blocks only where PaX
    PAGEEXEC is known to kill; anywhere else it proves nothing either way."""
    if verdict["outcome"] == "killed" and not pax_kills:
        return "unknown"
    return _WORKS.get(verdict["outcome"], "unknown")


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
    for cap, ids, kind, name, what in CAPABILITIES:
        verdicts = [(i, probes[i]) for i in ids if i in probes]
        if not verdicts:
            continue
        if kind == "nx":
            state, text = _nx_line(name, what, verdicts[0][1], pax_kills)
        elif kind == "any":
            works = [i for i, v in verdicts if v["outcome"] == "allowed"]
            states = [_state(v, pax_kills) for _, v in verdicts]
            if works:
                state = "works"
                text = "%s works via %s" % (name, ", ".join(i.replace("dual_map_", "") for i in works))
                others = [(i, v) for i, v in verdicts if i not in works]
                if others:
                    text += "; not via %s" % "; ".join(
                        "%s (%s)" % (i.replace("dual_map_", ""), _why(v, pax_kills)) for i, v in others)
            else:
                state = "blocked" if "blocked" in states else ("broken" if "broken" in states else "unknown")
                text = "%s %s: %s" % (name, state, "; ".join(
                    "%s: %s" % (i.replace("dual_map_", ""), _why(v, pax_kills)) for i, v in verdicts))
        else:
            verdict = verdicts[0][1]
            state = _state(verdict, pax_kills)
            text = "%s works" % name if state == "works" else "%s %s: %s" % (
                name, state, _why(verdict, pax_kills))
        summary[cap] = {"state": state, "text": text}
    return summary


