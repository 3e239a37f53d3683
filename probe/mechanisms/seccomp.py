"""A seccomp filter (systemd's MemoryDenyWriteExecute=, LockPersonality=, SystemCallFilter=):
refuses with an errno (EPERM, or ENOSYS to look absent) or kills with SIGSYS."""

from probe.mechanisms._base import ACTIVE, INACTIVE, UNSURE, Facts, Observation, Op
from probe.policy import Detector, Source
from probe.policy import parse as _parse

MECHANISMS = {"seccomp": "a seccomp filter (e.g. systemd MemoryDenyWriteExecute=)"}
OSES = ("linux",)
FIX_HINTS = {"seccomp": "for a systemd service, set MemoryDenyWriteExecute=no"}


class Seccomp(Detector):
    name = "seccomp"
    title = "seccomp"
    oses = ("linux",)
    order = 40

    def read(self, src: Source) -> dict:
        status = src.status()
        mode = _parse.to_int(status.get("Seccomp"))
        out = {"state": {0: "disabled", 1: "strict", 2: "filter"}.get(mode, "unknown"),
               "mode": mode, "filters": _parse.to_int(status.get("Seccomp_filters")),
               "no_new_privs": None if "NoNewPrivs" not in status else status["NoNewPrivs"] == "1"}
        if mode is None:
            out["reason"] = "no Seccomp: line in /proc/self/status (kernel without CONFIG_SECCOMP)"
        elif mode == 2:
            out["note"] = ("the filter itself cannot be read without ptrace and CAP_SYS_ADMIN; "
                           "what it refuses is inferred from the probes")
        return out


DETECTOR = Seccomp


def status(mech: str, f: Facts, op: "Op | None") -> tuple:
    s = f.policy("seccomp")
    mode = s.get("mode", f.process.get("seccomp_mode"))
    filters = s.get("filters", f.process.get("seccomp_filters"))
    if mode == 2:
        return ACTIVE, "Seccomp: 2 in /proc/self/status (%s filter%s attached)" % (
            filters if filters is not None else "some", "" if filters == 1 else "s")
    if mode in (0, 1):
        return INACTIVE, "Seccomp: %d in /proc/self/status: no filter" % mode
    return UNSURE, "the seccomp mode is not known"


def _looks_absent(obs, op):
    return obs.denied and obs.err == "ENOSYS"


def _killed(obs, op):
    return obs.sig == "SIGSYS"


def _memory_deny_write_execute(obs, op):
    return obs.refused(op, "EPERM") and (
        (op.call == "mmap" and op.w_and_x) or (op.call == "mprotect" and op.wants_x))


def _lock_personality(obs, op):
    return obs.denied and op.call == "personality" and obs.err == "EPERM"


# (rank, whether the filter explains the observation, how)
_RULES = (
    (30, _looks_absent, "{what} failed with ENOSYS: a seccomp filter can make a system call "
                        "look absent (a kernel without the call fails the same way)"),
    (40, _killed, "{what} ended the process with SIGSYS: a seccomp filter's kill action"),
    (300, _memory_deny_write_execute,
     "{what} refused with EPERM: systemd's MemoryDenyWriteExecute= filter refuses W|X mmap "
     "and any mprotect with X"),
    (600, _lock_personality, "personality() refused with EPERM: systemd's LockPersonality= "
                             "filter refuses changing the execution domain"),
)


def rules(obs: Observation, op: Op, f: Facts) -> list:
    """The filter's refusals: an errno it returns, or its kill action."""
    return [(rank, "seccomp", text.format(what=obs.what))
            for rank, explains, text in _RULES if explains(obs, op)]


def refine(mech: str, confidence: "str | None", result: dict, op: Op, f: Facts,
           evidence: list) -> "str | None":
    """The filter cannot be read, so an errno alone never confirms it; a SIGSYS does."""
    if result.get("signal") == "SIGSYS":
        return confidence
    noop = f.noop_refused()
    if noop is not None and op.probe != "mprotect_rx_noop":
        evidence.append("mprotect_rx_noop (a no-op RX->RX mprotect) is refused too, which only "
                        "a seccomp filter does")
    elif f.outcome("mprotect_rx_noop") == "allowed" and op.call == "mprotect":
        evidence.append("but a no-op RX->RX mprotect is allowed, unlike under systemd's filter")
    return "likely"
