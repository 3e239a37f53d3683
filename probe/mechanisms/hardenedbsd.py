"""HardenedBSD PaX NOEXEC: MPROTECT refuses W<->X changes (EACCES/EPERM); PAGEEXEC
removes X from the maximum protection of writable mappings, so PROT_EXEC is dropped or
refused."""

from probe.mechanisms._base import ACTIVE, INACTIVE, UNSURE, Facts, Observation, Op
from probe.policy import Detector, Source, unknown
from probe.policy import parse as _parse
from probe.policy.facts import int_sysctl

MECHANISMS = {"hardenedbsd-pageexec": "HardenedBSD PAGEEXEC",
              "hardenedbsd-mprotect": "HardenedBSD MPROTECT"}
OSES = ("freebsd",)
FIX_HINTS = {"hardenedbsd-pageexec": "hbsdcontrol pax disable pageexec BINARY",
             "hardenedbsd-mprotect": "hbsdcontrol pax disable mprotect BINARY"}


class HardenedBSD(Detector):
    name = "hardenedbsd"
    title = "HardenedBSD PaX NOEXEC (PAGEEXEC, MPROTECT)"
    oses = ("freebsd",)
    order = 100

    def read(self, src: Source) -> dict:
        reasons = []
        out = {"state": None}
        statuses = []
        for feature in ("pageexec", "mprotect"):
            value = int_sysctl(src, "hardening.pax.%s.status" % feature, reasons)
            out[feature] = None if value is None else {
                "status": value, "mode": _parse.HBSD_MODES.get(value, "unknown")}
            if value is not None:
                statuses.append(value)
        if not statuses:
            if reasons:
                return unknown("; ".join(reasons), pageexec=None, mprotect=None)
            out["state"] = "absent"
            out["reason"] = "no hardening.pax.* sysctls: FreeBSD, not HardenedBSD"
            return out
        top = max(statuses)
        out["state"] = "on" if top >= 2 else ("opt_in" if top == 1 else "off")
        out["note"] = ("per-program exemptions (hbsdcontrol, secadm) are not read; "
                       "opt-out means on unless the program is exempted")
        return out


DETECTOR = HardenedBSD


def status(mech: str, f: Facts, op: "Op | None") -> tuple:
    s = f.policy("hardenedbsd")
    feature_name = mech.split("-")[1]
    feature = s.get(feature_name) or {}
    state = feature.get("status")
    if s.get("state") == "absent":
        return INACTIVE, "not HardenedBSD (no hardening.pax sysctls)"
    if state is None:
        return UNSURE, "hardening.pax.%s.status unknown" % feature_name
    name = "hardening.pax.%s.status = %d (%s)" % (feature_name, state, feature.get("mode"))
    if state >= 2:
        return ACTIVE, name
    if state == 1:
        return UNSURE, name + ": applies only to programs that opt in"
    return INACTIVE, name


def rules(obs: Observation, op: Op, f: Facts) -> list:
    out = []
    what = obs.what
    if obs.dropped:
        out.append((100, "hardenedbsd-pageexec", "%s succeeded but the mapping has no X: "
                                                 "HardenedBSD PAGEEXEC drops PROT_EXEC silently" % what))
    if obs.refused(op, "EACCES") and op.changes_x:
        out.append((208, "hardenedbsd-mprotect", "%s refused: HardenedBSD MPROTECT refuses W<->X "
                                                 "changes" % what))
        out.append((209, "hardenedbsd-pageexec", "%s refused: HardenedBSD PAGEEXEC removes X from "
                                                 "the maximum protection of writable mappings" % what))
    if obs.refused(op, "EPERM") and op.changes_x:
        out.append((303, "hardenedbsd-mprotect", "%s refused with EPERM: HardenedBSD MPROTECT" % what))
    return out
