"""Hardware no-execute page protection (NX/XD): running code from memory that was never
made executable faults with SIGSEGV (SIGBUS on some CPUs)."""

from probe.mechanisms._base import ACTIVE, ANY_OS, INACTIVE, UNSURE, Facts, Observation, Op
from probe.policy import Detector, Source, unknown
from probe.policy import parse as _parse

MECHANISMS = {"nx": "hardware no-execute page protection (NX/XD)"}
OSES = ANY_OS
FIX_HINTS = {}

# Probes that run code from memory that was never made executable.
NON_X_CODE = ("exec_rw", "exec_heap", "exec_stack")
_MEMORY_WORDS = {"anon": "plain RW", "heap": "heap", "stack": "stack"}


class CpuNX(Detector):
    name = "cpu_nx"
    title = "CPU NX flag"
    oses = ("linux",)
    order = 10

    def read(self, src: Source) -> dict:
        # The first CPU's block holds the flags line; no need to read every CPU.
        text = src.read_text("/proc/cpuinfo", 65536)
        nx = _parse.parse_cpuinfo_nx(text)
        if nx is None:
            return unknown("/proc/cpuinfo lists no CPU flags on this architecture (x86 only); "
                           "the exec_rw probe shows whether NX is enforced", source="/proc/cpuinfo")
        return {"state": "on" if nx else "off", "source": "/proc/cpuinfo flags"}


DETECTOR = CpuNX


def status(mech: str, f: Facts, op: "Op | None") -> tuple:
    nx = f.policy("cpu_nx").get("state")
    if nx == "on":
        return ACTIVE, "the CPU lists the nx flag"
    if nx == "off":
        return INACTIVE, "the CPU does not list the nx flag"
    host_nx = f.host.get("cpu_nx")
    if host_nx is not None:
        return (ACTIVE if host_nx else INACTIVE), "host.cpu_nx is %s" % str(host_nx).lower()
    return UNSURE, "the CPU's NX support is not reported on this host"


def rules(obs: Observation, op: Op, f: Facts) -> list:
    if obs.sig in ("SIGSEGV", "SIGBUS") and op.call == "call" and op.probe in NON_X_CODE:
        return [(10, "nx", "running code from %s memory that was never made executable ended "
                           "in %s" % (_MEMORY_WORDS[op.memory], obs.sig))]
    return []
