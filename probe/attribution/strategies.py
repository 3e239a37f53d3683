"""Strategy verdicts and the one-sentence recommendation, from attributed probe results.

    strategies(report) -> {strategy: entry};  recommendation(report, strats) -> str

Pure functions of the report dict.
"""

from probe.mechanisms import MECHANISMS, sigkill_is_pax
from probe.vocab import outcome_state

FIX_HINTS = {
    "mdwe": "start the program without PR_SET_MDWE / MemoryDenyWriteExecute= (it cannot be undone in-process)",
    "seccomp": "for a systemd service, set MemoryDenyWriteExecute=no",
    "pax-mprotect": "exempt the binary from MPROTECT (setfattr -n user.pax.flags -v m BINARY, or paxctl-ng -m)",
    "pax-pageexec": "exempt the binary from PAGEEXEC (setfattr -n user.pax.flags -v p BINARY)",
    "selinux-execmem": "allow execmem for the domain (setsebool -P deny_execmem off on Fedora, allow_execmem on on Debian, or a policy module)",
    "selinux-execheap": "allow execheap for the domain",
    "selinux-execstack": "allow execstack for the domain",
    "selinux-execmod": "allow execmod for the file type",
    "freebsd-wx": "mark the binary with elfctl -e +wxneeded, or set kern.elf64.allow_wx=1",
    "hardenedbsd-pageexec": "hbsdcontrol pax disable pageexec BINARY",
    "hardenedbsd-mprotect": "hbsdcontrol pax disable mprotect BINARY",
    "netbsd-pax-mprotect": "paxctl +m BINARY",
    "openbsd-wx": "link with -z wxneeded and run from a wxallowed mount",
    "noexec-mount": "point TMPDIR at a directory on a mount without noexec",
}

STRATEGIES = [
    ("rwx_mapping", ("map_rwx",), ["HotSpot code cache", "PyPy JIT"],
     "map the code buffer RWX and write and run it in place"),
    ("wx_flip", ("flip_rw_rx",), ["LuaJIT", "SpiderMonkey", "Wasmtime"],
     "write code into RW memory, then mprotect it RX"),
    ("rwx_flip", ("flip_rw_rwx",), ["V8 / node (--write-code-using-rwx, node 20's default)"],
     "make RW memory RWX with mprotect, then write and run the code in place"),
    ("dual_mapping", ("dual_map_memfd", "dual_map_shm", "dual_map_file"),
     [".NET (memfd on Linux, SHM_ANON on FreeBSD)", "libffi closures (fallback)"],
     "map one shared object twice: write through an RW view, run from an RX view"),
    ("code_repatching", ("repatch_rx", "patch_rwx"),
     ["inline caches", "in-process hot patching", "function hooks"],
     "change code that already ran: flip it RX->RW->RX (repatch_rx) or patch it while RWX (patch_rwx)"),
]


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


def strategies(report):
    probes = report.get("probes") or {}
    pax_kills = sigkill_is_pax(report)
    out = {}
    for name, ids, examples, how in STRATEGIES:
        present = [(i, probes[i]) for i in ids if isinstance(probes.get(i), dict)]
        verdicts = {i: _verdict(r, pax_kills) for i, r in present}
        blocked_by = []
        for i, r in present:
            if verdicts[i] == "blocked":
                for m in _mechs(r):
                    if m not in blocked_by:
                        blocked_by.append(m)
        if not present:
            verdict = "unknown"
        elif "works" in verdicts.values():
            verdict = "works"
        elif all(v == "blocked" for v in verdicts.values()):
            verdict = "blocked"
        else:
            verdict = "unknown"
        entry = {"verdict": verdict, "blocked_by": blocked_by if verdict != "works" else [],
                 "probes": [i for i, _ in present], "examples": list(examples),
                 "detail": _strategy_detail(name, how, present, verdicts)}
        if name == "dual_mapping":
            entry["variants"] = {i.replace("dual_map_", ""): verdicts[i] for i, _ in present}
        out[name] = entry
    return out


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


def recommendation(report, strats=None):
    """One sentence for this host, from the strategy verdicts."""
    strats = strats or report.get("strategies") or strategies(report)
    scope = _scope_suffix(report)
    return _recommend(strats, scope) + _kill_warning(report, strats)


def _recommend(strats, scope):
    wx, dual, rwx = strats.get("wx_flip", {}), strats.get("dual_mapping", {}), strats.get("rwx_mapping", {})
    if wx.get("verdict") == "works":
        tail = ""
        if rwx.get("verdict") == "blocked":
            tail = ", while RWX mappings are blocked by %s" % _names(rwx["blocked_by"])
        return ("Use W^X flipping: write code into RW memory, then mprotect it RX (as LuaJIT, "
                "SpiderMonkey and Wasmtime do); it works here%s%s." % (tail, scope))
    if dual.get("verdict") == "works":
        variants = dual.get("variants") or {}
        via = next((v for v in ("memfd", "shm", "file") if variants.get(v) == "works"), None)
        how = {"memfd": "memfd_create", "shm": "a POSIX shared-memory object (shm_open)",
               "file": "a temporary file"}.get(via, "a shared object")
        why = ("flipping is blocked by %s" % _names(wx.get("blocked_by"))) if wx.get("verdict") == "blocked" \
            else "flipping could not be checked"
        return ("Use double mapping through %s (write through an RW view, run from an RX view of the "
                "same memory): %s%s." % (how, why, scope))
    if rwx.get("verdict") == "works":
        return ("Only RWX mappings work here (flipping and double mapping are %s): map the code "
                "buffer RWX%s." % ("blocked" if wx.get("verdict") == "blocked" else "not confirmed", scope))
    verdicts = [s.get("verdict") for s in (wx, dual, rwx)]
    if all(v == "blocked" for v in verdicts):
        mechs = []
        for s in (wx, dual, rwx):
            for m in s.get("blocked_by") or ():
                if m not in mechs:
                    mechs.append(m)
        hints = [FIX_HINTS[m] for m in mechs if m in FIX_HINTS]
        return ("No way of loading code at run time works for this process (blocked by %s): use an "
                "interpreter or ahead-of-time compiled code%s%s." % (
                    _names(mechs), (", or lift the restriction: " + "; ".join(hints[:2])) if hints else "",
                    scope))
    return ("Not enough evidence to recommend a strategy: W^X flipping is %s, double mapping %s and RWX "
            "mapping %s%s." % (wx.get("verdict", "unknown"), dual.get("verdict", "unknown"),
                               rwx.get("verdict", "unknown"), scope))


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

