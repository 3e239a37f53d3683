"""The one-sentence recommendation for a host, from the strategy verdicts.

    recommendation(report, strats) -> str

Pure functions of the report dict.
"""

from probe.mechanisms import FIX_HINTS, MECHANISMS


def recommendation(report: dict, strats: "dict | None" = None) -> str:
    """One sentence for this host, from the strategy verdicts."""
    if not strats:
        strats = report.get("strategies")
    if not strats:
        from probe.attribution.strategies import strategies
        strats = strategies(report)
    scope = _scope_suffix(report)
    return _recommend(strats, scope) + _kill_warning(report, strats)


def _use_flipping(wx, dual, rwx, scope):
    tail = ""
    if rwx.get("verdict") == "blocked":
        tail = ", while RWX mappings are blocked by %s" % _names(rwx["blocked_by"])
    return ("Use W^X flipping: write code into RW memory, then mprotect it RX (as LuaJIT, "
            "SpiderMonkey and Wasmtime do); it works here%s%s." % (tail, scope))


_DUAL_VIA = {"memfd": "memfd_create", "shm": "a POSIX shared-memory object (shm_open)",
             "file": "a temporary file"}


def _use_double_mapping(wx, dual, rwx, scope):
    variants = dual.get("variants") or {}
    via = next((v for v in ("memfd", "shm", "file") if variants.get(v) == "works"), None)
    how = _DUAL_VIA.get(via, "a shared object")
    if wx.get("verdict") == "blocked":
        why = "flipping is blocked by %s" % _names(wx.get("blocked_by"))
    else:
        why = "flipping could not be checked"
    return ("Use double mapping through %s (write through an RW view, run from an RX view of the "
            "same memory): %s%s." % (how, why, scope))


def _use_rwx(wx, dual, rwx, scope):
    return ("Only RWX mappings work here (flipping and double mapping are %s): map the code "
            "buffer RWX%s." % ("blocked" if wx.get("verdict") == "blocked" else "not confirmed", scope))


def _nothing_works(wx, dual, rwx, scope):
    mechs = []
    for s in (wx, dual, rwx):
        mechs.extend(m for m in s.get("blocked_by") or () if m not in mechs)
    hints = [FIX_HINTS[m] for m in mechs if m in FIX_HINTS]
    lift = (", or lift the restriction: " + "; ".join(hints[:2])) if hints else ""
    return ("No way of loading code at run time works for this process (blocked by %s): use an "
            "interpreter or ahead-of-time compiled code%s%s." % (_names(mechs), lift, scope))


def _not_enough(wx, dual, rwx, scope):
    return ("Not enough evidence to recommend a strategy: W^X flipping is %s, double mapping %s and RWX "
            "mapping %s%s." % (wx.get("verdict", "unknown"), dual.get("verdict", "unknown"),
                               rwx.get("verdict", "unknown"), scope))


def _recommend(strats, scope):
    wx, dual, rwx = strats.get("wx_flip", {}), strats.get("dual_mapping", {}), strats.get("rwx_mapping", {})
    if wx.get("verdict") == "works":
        sentence = _use_flipping
    elif dual.get("verdict") == "works":
        sentence = _use_double_mapping
    elif rwx.get("verdict") == "works":
        sentence = _use_rwx
    elif all(s.get("verdict") == "blocked" for s in (wx, dual, rwx)):
        sentence = _nothing_works
    else:
        sentence = _not_enough
    return sentence(wx, dual, rwx, scope)


# The strategies a program can start with, in the order the recommendation prefers them.
_WORKING_NAMES = (("wx_flip", "W^X flipping (RW, then mprotect RX)"),
                  ("dual_mapping", "double mapping (an RW view and an RX view)"),
                  ("rwx_mapping", "an RWX mapping"),
                  ("rwx_flip", "an RW->RWX mprotect"))


def killed_by_filter(report: dict) -> list:
    """The probes a seccomp filter killed (SIGSYS): there, a blocked call is fatal."""
    return [pid for pid, r in sorted((report.get("probes") or {}).items())
            if isinstance(r, dict) and r.get("signal") == "SIGSYS"]


def _kill_warning(report, strats):
    """Where a blocked call kills instead of failing, a program cannot try and fall back."""
    killed = killed_by_filter(report)
    if not killed:
        return ""
    use = next((text for name, text in _WORKING_NAMES
                if strats.get(name, {}).get("verdict") == "works"), None)
    start = ("use %s from the start" % use) if use else "no strategy is safe to try"
    return (" Warning: a seccomp filter kills the process with SIGSYS instead of refusing (%d "
            "probe%s died of it), so trying a blocked strategy kills the program: a runtime that "
            "tries RWX first and falls back, as libffi does for ctypes callbacks, dies here; %s."
            % (len(killed), "" if len(killed) == 1 else "s", start))


def _names(mechs):
    mechs = [m for m in (mechs or ()) if m and m != "unknown"]
    if not mechs:
        return "an unidentified mechanism"
    return ", ".join("%s [%s]" % (MECHANISMS[m], m) if m in MECHANISMS else m for m in mechs)


def _scope_suffix(report):
    pax = ((report.get("policies") or {}).get("pax") or {})
    marks = pax.get("markings") or {}
    if pax.get("state") in ("on", "off", "no_mm") and marks.get("source"):
        return " (for programs marked like %s; unmarked programs get the kernel's PaX defaults)" % (
            pax.get("interpreter") or "the interpreter")
    return ""

