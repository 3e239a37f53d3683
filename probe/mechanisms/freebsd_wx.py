"""FreeBSD W^X (13.0 and later, kern.elf*.allow_wx=0): mappings asking for W and X
together are refused with EACCES unless the program is marked wxneeded."""

from probe.mechanisms._base import ACTIVE, INACTIVE, UNSURE, Facts, Observation, Op
from probe.policy import Detector, Source, Unavailable
from probe.policy import parse as _parse
from probe.policy.facts import int_sysctl, interpreter_elf

MECHANISMS = {"freebsd-wx": "FreeBSD W^X (kern.elf*.allow_wx=0)"}
OSES = ("freebsd",)
FIX_HINTS = {"freebsd-wx": "mark the binary with elfctl -e +wxneeded, or set kern.elf64.allow_wx=1"}


def _procctl(src, out):
    """PROC_WXMAP_STATUS of this process, decoded, into out['procctl'] (or the reason)."""
    try:
        raw = _parse.to_int(src.call("procctl PROC_WXMAP_STATUS"), 0)
        if raw is not None:
            out["procctl"] = _parse.decode_wxmap_status(raw)
    except Unavailable as exc:
        out["procctl_reason"] = str(exc)


def _state(out, allow, reasons):
    """(state, reason or None): the per-process answer already folds in elfctl marks and
    procctl exemptions; the sysctl of the interpreter's ABI is the fallback."""
    if out["procctl"] is not None:
        return ("enforcing" if out["procctl"]["wxorx_enforce"] else "off"), None
    abi = out["abi"]
    if allow[abi] is not None:
        return ("enforcing" if allow[abi] == 0 else "off"), None
    if allow["elf64"] is None and allow["elf32"] is None and not reasons:
        return "absent", "no kern.elf64.allow_wx sysctl: FreeBSD before 13.0 has no W^X policy"
    return "unknown", "; ".join(reasons) or "kern.%s.allow_wx is missing" % abi


class FreeBSDWX(Detector):
    name = "freebsd_wx"
    title = "FreeBSD W^X (kern.elf*.allow_wx)"
    oses = ("freebsd",)
    order = 90

    def read(self, src: Source) -> dict:
        reasons = []
        allow = {abi: int_sysctl(src, "kern.%s.allow_wx" % abi, reasons) for abi in ("elf64", "elf32")}
        abi = "elf64" if src.pointer_bits() == 64 else "elf32"
        out = {"state": None, "allow_wx": allow, "abi": abi, "procctl": None}
        _procctl(src, out)
        exe, marks, note = interpreter_elf(src)
        out["interpreter"] = exe
        out["interpreter_wxneeded"] = None if marks is None else (
            "wxneeded" in (marks["freebsd_features"] or {}).get("flags", ()))
        if note:
            out["interpreter_reason"] = note
        out["state"], reason = _state(out, allow, reasons)
        if reason:
            out["reason"] = reason
        return out


DETECTOR = FreeBSDWX


def status(mech: str, f: Facts, op: "Op | None") -> tuple:
    s = f.policy("freebsd_wx")
    state = s.get("state")
    proc = s.get("procctl") or {}
    if state == "enforcing":
        return ACTIVE, ("procctl(PROC_WXMAP_STATUS) = %s (WXORX_ENFORCE)" % proc["value"]) if proc \
            else "kern.%s.allow_wx = 0" % s.get("abi", "elf64")
    if state in ("off", "absent"):
        return INACTIVE, "W^X is not enforced for this process (allow_wx %s)" % s.get("allow_wx")
    return UNSURE, "FreeBSD W^X state unknown"


def rules(obs: Observation, op: Op, f: Facts) -> list:
    if obs.refused(op, "EACCES") and op.w_and_x:
        return [(207, "freebsd-wx", "%s asked for W and X together and was refused with "
                                    "EACCES" % obs.what)]
    return []
