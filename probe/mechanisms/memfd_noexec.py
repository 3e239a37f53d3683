"""vm.memfd_noexec (Linux 6.3): at 2, memfd_create() refuses executable memfds (EACCES)."""

from probe.mechanisms._base import ACTIVE, INACTIVE, UNSURE, Facts, Observation, Op
from probe.policy import Detector, Source, Unavailable, unknown
from probe.policy import parse as _parse

MECHANISMS = {"memfd-noexec": "vm.memfd_noexec"}
OSES = ("linux",)
FIX_HINTS = {}


class MemfdNoexec(Detector):
    name = "memfd_noexec"
    title = "vm.memfd_noexec"
    oses = ("linux",)
    order = 70

    def read(self, src: Source) -> dict:
        try:
            raw = src.read_text("/proc/sys/vm/memfd_noexec")
        except Unavailable as exc:
            if str(exc).startswith("no "):
                return {"state": "absent", "value": None,
                        "reason": "no /proc/sys/vm/memfd_noexec: the kernel predates it (Linux 6.3)"}
            raise
        value = _parse.to_int(raw)
        if value not in (0, 1, 2):
            return unknown("unexpected vm.memfd_noexec value %r" % raw.strip())
        return {"state": ("off", "on", "enforcing")[value], "value": value}


DETECTOR = MemfdNoexec


def status(mech: str, f: Facts, op: "Op | None") -> tuple:
    s = f.policy("memfd_noexec")
    if s.get("value") == 2:
        return ACTIVE, "vm.memfd_noexec = 2: memfd_create(MFD_EXEC) is refused"
    if s.get("state") in ("off", "on", "absent"):
        return INACTIVE, "vm.memfd_noexec is %s" % (s.get("value") if s.get("value") is not None else "absent")
    return UNSURE, "vm.memfd_noexec is not known"


def rules(obs: Observation, op: Op, f: Facts) -> list:
    if obs.denied and op.call == "open" and op.probe == "dual_map_memfd" and obs.err == "EACCES":
        return [(500, "memfd-noexec", "memfd_create refused with EACCES: vm.memfd_noexec=2 "
                                      "refuses executable memfds")]
    return []
