"""Strategy verdicts from attributed probe results.

    strategies(report) -> {strategy: entry}

Pure functions of the report dict; the recommendation built on them is in
probe.attribution.recommendation.
"""

from probe.mechanisms import sigkill_is_pax
from probe.vocab import outcome_state

# (strategy, the runtimes that use it, how it loads code). Which probes test a strategy
# is each probe's own `strategy` declaration (probe.engine.probes).
_STRATEGY_TEXT = [
    ("rwx_mapping", ["HotSpot code cache", "PyPy JIT"],
     "map the code buffer RWX and write and run it in place"),
    ("wx_flip", ["LuaJIT", "SpiderMonkey", "Wasmtime"],
     "write code into RW memory, then mprotect it RX"),
    ("rwx_flip", ["V8 / node (--write-code-using-rwx, node 20's default)"],
     "make RW memory RWX with mprotect, then write and run the code in place"),
    ("dual_mapping", [".NET (memfd on Linux, SHM_ANON on FreeBSD)", "libffi closures (fallback)"],
     "map one shared object twice: write through an RW view, run from an RX view"),
    ("code_repatching", ["inline caches", "in-process hot patching", "function hooks"],
     "change code that already ran: flip it RX->RW->RX (repatch_rx) or patch it while RWX (patch_rwx)"),
]


def _strategy_table():
    """[(strategy, (probe ids in registry order), examples, how)]."""
    from probe.engine.probes import REGISTRY
    return [(name, tuple(p.id for p in REGISTRY if p.strategy == name), examples, how)
            for name, examples, how in _STRATEGY_TEXT]


STRATEGIES = _strategy_table()


# --- strategies -------------------------------------------------------------------------

def _verdict(result, pax_kills):
    if not isinstance(result, dict):
        return "unknown"
    # An outside SIGKILL (the OOM killer) says nothing of the strategy.
    return outcome_state(result.get("outcome"), pax_kills)


def _mechs(result):
    out = []
    for a in result.get("attribution") or ():
        if a["mechanism"] != "unknown" and a["confidence"] in ("confirmed", "likely") and a["mechanism"] not in out:
            out.append(a["mechanism"])
    if not out and result.get("attribution"):
        out.append("unknown")
    return out


def _blocked_by(present, verdicts):
    """The mechanisms attributed to the strategy's blocked probes, each once."""
    out = []
    for i, r in present:
        if verdicts[i] == "blocked":
            out.extend(m for m in _mechs(r) if m not in out)
    return out


def _overall(verdicts):
    """One verdict for a strategy: works when any probe works, blocked when all are."""
    if not verdicts:
        return "unknown"
    if "works" in verdicts.values():
        return "works"
    if all(v == "blocked" for v in verdicts.values()):
        return "blocked"
    return "unknown"


def _entry(name, ids, examples, how, probes, pax_kills):
    present = [(i, probes[i]) for i in ids if isinstance(probes.get(i), dict)]
    verdicts = {i: _verdict(r, pax_kills) for i, r in present}
    verdict = _overall(verdicts)
    entry = {"verdict": verdict,
             "blocked_by": _blocked_by(present, verdicts) if verdict != "works" else [],
             "probes": [i for i, _ in present], "examples": list(examples),
             "detail": _strategy_detail(name, how, present, verdicts)}
    if name == "dual_mapping":
        entry["variants"] = {i.replace("dual_map_", ""): verdicts[i] for i, _ in present}
    return entry


def strategies(report: dict) -> dict:
    """{strategy: {verdict, blocked_by, probes, examples, detail[, variants]}}."""
    probes = report.get("probes") or {}
    pax_kills = sigkill_is_pax(report)
    return {name: _entry(name, ids, examples, how, probes, pax_kills)
            for name, ids, examples, how in STRATEGIES}


def _strategy_detail(name, how, present, verdicts):
    if not present:
        return "%s: not probed" % how
    parts = []
    for i, r in present:
        v = verdicts[i]
        if v == "works":
            parts.append("%s works" % i)
        elif v == "blocked":
            mechs = ", ".join("%s (%s)" % (a["mechanism"], a["confidence"])
                              for a in r.get("attribution") or ()) or "not attributed"
            parts.append("%s %s at %s: %s" % (i, r.get("outcome"), r.get("step"), mechs))
        else:
            parts.append("%s %s%s" % (i, r.get("outcome"), (": " + r["detail"]) if r.get("detail") else ""))
    return "%s. %s" % (how[0].upper() + how[1:], "; ".join(parts))

