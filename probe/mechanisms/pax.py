"""PaX (grsecurity / hardened Linux kernels): MPROTECT refuses W|X mappings and X
changes with EACCES/EPERM (or drops PROT_EXEC in MPROTECT_COMPAT mode); PAGEEXEC kills
code running from non-executable memory with SIGKILL."""

from probe.mechanisms._base import ACTIVE, INACTIVE, UNSURE, Facts, Observation, Op
from probe.policy import Detector, Source, Unavailable, unknown
from probe.policy import parse as _parse
from probe.policy import markings as _markings
from probe.policy.facts import interpreter_markings, kernel_config

MECHANISMS = {"pax-mprotect": "PaX MPROTECT (grsecurity / hardened kernel)",
              "pax-pageexec": "PaX PAGEEXEC (grsecurity / hardened kernel)"}
OSES = ("linux",)
FIX_HINTS = {
    "pax-mprotect": "exempt the binary from MPROTECT (setfattr -n user.pax.flags -v m BINARY, or paxctl-ng -m)",
    "pax-pageexec": "exempt the binary from PAGEEXEC (setfattr -n user.pax.flags -v p BINARY)",
}


# --- detector --------------------------------------------------------------------------


def grsecurity_evidence(src: Source) -> tuple:
    """(True/False/None, [evidence strings])."""
    evidence = []
    if src.exists("/proc/sys/kernel/grsecurity"):
        evidence.append("/proc/sys/kernel/grsecurity exists")
    if src.exists("/dev/grsec"):
        evidence.append("/dev/grsec exists (RBAC)")
    release = src.kernel_release() or ""
    if "grsec" in release:
        evidence.append("kernel release %s" % release)
    try:
        options, source = kernel_config(src)
        if options.get("CONFIG_GRKERNSEC"):
            evidence.append("CONFIG_GRKERNSEC=%s in %s" % (options["CONFIG_GRKERNSEC"], source))
        elif not evidence:
            return False, ["CONFIG_GRKERNSEC is not set in %s" % source]
    except Unavailable:
        pass
    if evidence:
        return True, evidence
    return None, ["no grsecurity sysctl directory, /dev/grsec or kernel config to tell"]


def _flag_state(parsed):
    """(state, mprotect_effective, reason) of a parsed PaX: line."""
    if parsed["no_mm"]:
        return "no_mm", None, ("PaX:\t----- : this task has no memory descriptor, so its flags "
                               "are not shown; a normal process shows five letters")
    f = parsed["flags"]
    noexec = f["pageexec"] or f["segmexec"]
    # MPROTECT only acts together with a non-executable page feature.
    return ("on" if (noexec or f["mprotect"]) else "off"), f["mprotect"] and noexec, None


class PaX(Detector):
    name = "pax"
    title = "PaX / grsecurity"
    oses = ("linux",)
    order = 20

    def read(self, src: Source) -> dict:
        line = src.status().get("PaX")
        if line is None:
            return {"state": "absent", "reason": "no PaX: line in /proc/self/status: the kernel has no PaX"}
        parsed = _markings.parse_pax_line(line)
        if parsed is None:
            return unknown("unrecognised PaX: line %r in /proc/self/status" % line, status_line=line)
        state, effective, reason = _flag_state(parsed)
        out = {"state": state, "status_line": parsed["raw"], "flags": parsed["flags"],
               "mprotect_effective": effective, "softmode": None}
        if reason:
            out["reason"] = reason
        try:
            out["softmode"] = _parse.to_int(src.read_text("/proc/sys/kernel/pax/softmode"))
        except Unavailable as exc:
            out["softmode_reason"] = "%s (root-only, and present only with CONFIG_PAX_SOFTMODE)" % exc
        out["grsecurity"], out["grsecurity_evidence"] = grsecurity_evidence(src)
        marks = interpreter_markings(src)
        out["interpreter"] = marks["interpreter"]
        out["markings"] = {k: marks[k] for k in ("source", "xattr", "pt_pax_flags", "exempt",
                                                  "forced")}
        if marks["notes"]:
            out["markings"]["notes"] = marks["notes"]
        out["scope"] = _scope(out, marks)
        return out


DETECTOR = PaX


def _scope(out, marks):
    exe = marks["interpreter"] or "the interpreter"
    if marks["source"] is None:
        text = ("%s carries no PaX markings, so these are the kernel's defaults for "
                "unmarked programs" % exe)
        if out.get("softmode") == 1:
            text += " (soft mode: features stay off unless a program is marked to enable them)"
        return text
    how = ("user.pax.flags=%s" % marks["xattr"]) if marks["source"] == "xattr" else (
        "PT_PAX_FLAGS %s" % marks["pt_pax_flags"]["letters"])
    parts = []
    if marks["exempt"]:
        parts.append("%s off" % ", ".join(n.upper() for n in marks["exempt"]))
    if marks["forced"]:
        parts.append("%s on" % ", ".join(n.upper() for n in marks["forced"]))
    return ("these results hold only for programs marked like %s (%s: %s); unmarked programs "
            "run with the kernel defaults: run memprobe from an unmarked copy of the "
            "interpreter to see those" % (exe, how, "; ".join(parts)))


# --- attribution -----------------------------------------------------------------------


def status(mech: str, f: Facts, op: "Op | None") -> tuple:
    p = f.policy("pax")
    state = p.get("state")
    if state == "absent":
        return INACTIVE, "the kernel has no PaX (no PaX: line in /proc/self/status)"
    if state not in ("on", "off"):
        return UNSURE, "PaX flags of this process are not known (%s)" % (
            p.get("reason") or state or "no detector")
    key = "mprotect" if mech == "pax-mprotect" else "pageexec"
    on = (p.get("flags") or {}).get(key)
    if mech == "pax-mprotect":
        on = p.get("mprotect_effective", on)
    line = "PaX flags %s" % p.get("status_line")
    return (ACTIVE if on else INACTIVE), "%s: %s is %s for this process" % (
        line, key.upper(), "on" if on else "off")


def _sigkill_on_run(obs: Observation, op: Op):
    if obs.sig == "SIGKILL" and op.call == "call":
        return (20, "pax-pageexec", "running the code ended in SIGKILL, which is how PaX "
                                    "PAGEEXEC stops execution of non-executable memory")
    return None


def _exec_dropped(obs: Observation, op: Op):
    if obs.dropped:
        return (101, "pax-mprotect", "%s succeeded but the mapping has no X: PaX MPROTECT in "
                                     "MPROTECT_COMPAT mode drops PROT_EXEC silently" % obs.what)
    return None


def _eacces_on_x_change(obs: Observation, op: Op):
    if obs.refused(op, "EACCES") and op.changes_x and op.memory in (
            "anon", "heap", "stack", "private_file"):
        return (201, "pax-mprotect", "%s refused with EACCES: PaX MPROTECT refuses adding X to "
                                     "a mapping and making an executable mapping writable" % obs.what)
    return None


def _eperm_on_wx_mmap(obs: Observation, op: Op):
    if obs.refused(op, "EPERM") and op.call == "mmap" and op.w_and_x and op.memory == "anon":
        return (301, "pax-mprotect", "%s refused with EPERM: PaX MPROTECT refuses W|X mmap" % obs.what)
    return None


_RULES = (_sigkill_on_run, _exec_dropped, _eacces_on_x_change, _eperm_on_wx_mmap)


def rules(obs: Observation, op: Op, f: Facts) -> list:
    """(rank, mechanism, reason) for each PaX rule the observation matches, in rule order."""
    return [found for found in (rule(obs, op) for rule in _RULES) if found is not None]


def refine(mech: str, confidence: "str | None", result: dict, op: Op, f: Facts,
           evidence: list) -> "str | None":
    """A silently dropped PROT_EXEC is PaX only with CONFIG_PAX_MPROTECT_COMPAT."""
    if mech == "pax-mprotect" and result.get("exec_dropped") and confidence == "confirmed":
        opts = f.policy("kernel_config").get("options") or {}
        if not opts.get("CONFIG_PAX_MPROTECT_COMPAT"):
            return "likely"
    return confidence


def scope(mech: str, f: Facts) -> "str | None":
    """Where the interpreter carries markings, the verdict holds for programs marked alike."""
    p = f.policy("pax")
    if (p.get("markings") or {}).get("source"):
        return "note: %s" % p.get("scope")
    return None
