"""NetBSD PaX MPROTECT: keeps a mapping either writable or executable (EACCES); before
NetBSD 8 it dropped PROT_EXEC from W|X requests silently."""

from probe.mechanisms._base import ACTIVE, INACTIVE, UNSURE, Facts, Observation, Op
from probe.policy import Detector, Source, unknown
from probe.policy.facts import int_sysctl, interpreter_elf

MECHANISMS = {"netbsd-pax-mprotect": "NetBSD PaX MPROTECT"}
OSES = ("netbsd",)
FIX_HINTS = {"netbsd-pax-mprotect": "paxctl +m BINARY"}


def _state(enabled, global_):
    if not enabled:
        return "off"
    return "on" if global_ else "opt_in"


def _marking(src, out):
    """The interpreter's paxctl marking for MPROTECT into out; True (+M), False (+m), None."""
    exe, marks, note = interpreter_elf(src)
    out["interpreter"] = exe
    mark = None if marks is None or marks["netbsd_pax"] is None else \
        marks["netbsd_pax"]["flags"].get("mprotect")
    # as paxctl(8) names them: +M forces MPROTECT on, +m exempts the program
    out["interpreter_marking"] = None if mark is None else ("+M" if mark else "+m")
    if note:
        out["interpreter_reason"] = note
    return marks is not None, mark


def _effective(enabled, global_, mark):
    """pax_mprotect_elf_flags_active(): global means "unless marked -m" (paxctl +m
    sets NOMPROTECT); opt-in means "only if marked to enable"."""
    return bool(enabled) and ((bool(global_) and mark is not False) or (not global_ and mark is True))


class NetBSDPaX(Detector):
    name = "netbsd_pax"
    title = "NetBSD PaX MPROTECT"
    oses = ("netbsd",)
    order = 110

    def read(self, src: Source) -> dict:
        reasons = []
        enabled = int_sysctl(src, "security.pax.mprotect.enabled", reasons)
        global_ = int_sysctl(src, "security.pax.mprotect.global", reasons)
        out = {"state": None, "enabled": enabled, "global": global_}
        segv = int_sysctl(src, "security.pax.segvguard.enabled", [])
        if segv is not None:
            out["segvguard"] = segv
        if enabled is None:
            if reasons:
                return unknown("; ".join(reasons), enabled=None, **{"global": global_})
            out["state"] = "absent"
            out["reason"] = "no security.pax.mprotect sysctls: the kernel has no PAX_MPROTECT"
            return out
        out["state"] = _state(enabled, global_)
        parsed, mark = _marking(src, out)
        if parsed and global_ is not None:
            out["effective_for_interpreter"] = _effective(enabled, global_, mark)
        return out


DETECTOR = NetBSDPaX


def status(mech: str, f: Facts, op: "Op | None") -> tuple:
    s = f.policy("netbsd_pax")
    eff = s.get("effective_for_interpreter")
    desc = "security.pax.mprotect.enabled = %s, .global = %s" % (s.get("enabled"), s.get("global"))
    if eff is True or (eff is None and s.get("state") == "on"):
        return ACTIVE, desc
    if eff is False or s.get("state") in ("off", "absent"):
        return INACTIVE, desc + (" (interpreter marked %s)" % s["interpreter_marking"]
                                 if s.get("interpreter_marking") else "")
    return UNSURE, desc


def rules(obs: Observation, op: Op, f: Facts) -> list:
    out = []
    if obs.dropped:
        out.append((102, "netbsd-pax-mprotect", "%s succeeded without X: NetBSD before 8 dropped "
                                                "PROT_EXEC from W|X requests" % obs.what))
    if obs.refused(op, "EACCES") and (op.w_and_x or op.gains_x or op.x_to_w):
        out.append((210, "netbsd-pax-mprotect", "%s refused with EACCES: NetBSD PaX MPROTECT keeps "
                                                "a mapping either writable or executable" % obs.what))
    return out
