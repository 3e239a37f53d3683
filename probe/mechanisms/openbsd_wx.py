"""OpenBSD W^X, always on: W|X requests are refused with ENOTSUP, or abort the process
with kern.wxabort=1, unless the program is wxneeded and runs from a wxallowed mount."""

from probe.mechanisms._base import ACTIVE, INACTIVE, Facts, Observation, Op
from probe.policy import Detector, Source, Unavailable
from probe.policy import parse as _parse
from probe.policy.facts import int_sysctl, interpreter_elf

MECHANISMS = {"openbsd-wx": "OpenBSD W^X"}
OSES = ("openbsd",)
FIX_HINTS = {"openbsd-wx": "link with -z wxneeded and run from a wxallowed mount"}


def _wxallowed(src, out, reasons):
    """The parsed mounts (None when unreadable); the wxallowed ones into out."""
    try:
        mounts = _parse.parse_bsd_mount(src.mount_listing())
    except Unavailable as exc:
        reasons.append(str(exc))
        return None
    out["wxallowed_mounts"] = [m["mount_point"] for m in mounts if "wxallowed" in m["options"]]
    return mounts


def _exempt(out, mounts, exe):
    """A wxneeded interpreter on a wxallowed mount may map W|X."""
    m = _parse.mount_for(mounts, exe)
    out["interpreter_on_wxallowed"] = None if m is None else "wxallowed" in m["options"]
    if out["interpreter_wxneeded"] and out["interpreter_on_wxallowed"]:
        out["state"] = "off"
        out["reason"] = ("the interpreter is marked wxneeded and runs from a wxallowed "
                         "mount, so W|X mappings are allowed for it")


class OpenBSDWX(Detector):
    name = "openbsd_wx"
    title = "OpenBSD W^X"
    oses = ("openbsd",)
    order = 120

    def read(self, src: Source) -> dict:
        reasons = []
        wxabort = int_sysctl(src, "kern.wxabort", reasons)
        out = {"state": "enforcing", "wxabort": wxabort, "wxallowed_mounts": None}
        mounts = _wxallowed(src, out, reasons)
        exe, marks, note = interpreter_elf(src)
        out["interpreter"] = exe
        out["interpreter_wxneeded"] = None if marks is None else marks["openbsd_wxneeded"]
        if note:
            reasons.append(note)
        if mounts is not None and exe and exe.startswith("/"):
            _exempt(out, mounts, exe)
        if reasons:
            out["notes"] = reasons
        return out


DETECTOR = OpenBSDWX


def status(mech: str, f: Facts, op: "Op | None") -> tuple:
    s = f.policy("openbsd_wx")
    if s.get("state") == "off":
        return INACTIVE, s.get("reason") or "W^X does not apply to this interpreter"
    return ACTIVE, "OpenBSD always enforces W^X (kern.wxabort = %s)" % s.get("wxabort")


def rules(obs: Observation, op: Op, f: Facts) -> list:
    out = []
    if obs.sig == "SIGABRT" and op.call in ("mmap", "mprotect") and op.w_and_x:
        out.append((50, "openbsd-wx", "%s asked for W|X and the process aborted "
                                      "(kern.wxabort=1)" % obs.what))
    for err in ("ENOTSUP", "EOPNOTSUPP"):
        if obs.refused(op, err) and op.w_and_x:
            out.append((400, "openbsd-wx", "%s asked for W|X and was refused with %s: OpenBSD "
                                           "W^X" % (obs.what, err)))
    return out
