"""The kernel's memory-deny-write-execute prctl (PR_SET_MDWE, Linux 6.3): refuses W|X
mappings and mappings gaining X with EACCES, for the process and its children."""

from probe.mechanisms._base import ACTIVE, INACTIVE, UNSURE, Facts, Observation, Op
from probe.policy import Detector, Source, unknown
from probe.policy import parse as _parse

MECHANISMS = {"mdwe": "the kernel's memory-deny-write-execute prctl (PR_SET_MDWE)"}
OSES = ("linux",)
FIX_HINTS = {"mdwe": "start the program without PR_SET_MDWE / MemoryDenyWriteExecute= (it "
                     "cannot be undone in-process)"}


class MDWE(Detector):
    name = "mdwe"
    title = "prctl memory-deny-write-execute"
    oses = ("linux",)
    order = 50

    def read(self, src: Source) -> dict:
        raw = src.call("prctl PR_GET_MDWE")
        value = None if raw.upper() == "EINVAL" else _parse.to_int(raw)
        if value is None and raw.upper() != "EINVAL":
            return unknown("calls.txt has %r for prctl PR_GET_MDWE" % raw)
        if value is None:
            return {"state": "unsupported", "value": None,
                    "reason": "prctl(PR_GET_MDWE) gives EINVAL: the kernel predates MDWE (Linux 6.3)"}
        return {"state": "on" if value & 1 else "off", "value": value,
                "refuse_exec_gain": bool(value & 1), "no_inherit": bool(value & 2)}


DETECTOR = MDWE


def status(mech: str, f: Facts, op: "Op | None") -> tuple:
    s = f.policy("mdwe")
    if s.get("state") == "unsupported":
        return INACTIVE, "the kernel has no PR_GET_MDWE (before Linux 6.3)"
    value = s.get("value") if s.get("state") in ("on", "off") else f.process.get("mdwe")
    if not isinstance(value, int):
        return UNSURE, "PR_GET_MDWE is not known"
    if value & 1:
        return ACTIVE, "prctl(PR_GET_MDWE) = %d (PR_MDWE_REFUSE_EXEC_GAIN)" % value
    return INACTIVE, "prctl(PR_GET_MDWE) = %d" % value


def rules(obs: Observation, op: Op, f: Facts) -> list:
    if obs.refused(op, "EACCES") and (op.w_and_x or (op.call == "mprotect" and op.gains_x)):
        return [(200, "mdwe", "%s refused with EACCES: MDWE refuses W|X mappings and mappings "
                              "gaining X" % obs.what)]
    return []
