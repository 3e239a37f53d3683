"""What every mechanism rule reads: the report's facts, the operation that failed and
the observation (errno, signal) it ended with. Pure: nothing here touches the host."""

import re

ACTIVE, INACTIVE, UNSURE = "active", "inactive", "unsure"

# The call a probe's `open` step makes, where it is the operation under test.
OPEN_CALL = {"dual_map_memfd": "memfd_create", "dual_map_shm": "shm_open"}

_STEP = re.compile(r"^(mmap|mprotect)_(?:file_)?(rwx|rw|rx)")

_MEMORY = {}


def probe_memory(probe_id: str) -> "str | None":
    """The memory kind a probe declares (probe.engine.probes), None for unknown ids."""
    if not _MEMORY:
        from probe.engine.probes import REGISTRY
        _MEMORY.update((p.id, p.memory) for p in REGISTRY)
    return _MEMORY.get(probe_id)


class Facts:
    """The report's evidence in the shape the rules use."""

    def __init__(self, report: dict) -> None:
        self.host = report.get("host") or {}
        self.process = report.get("process") or {}
        self.policies = report.get("policies") or {}
        self.probes = report.get("probes") or {}
        self.os = self.host.get("os")

    def policy(self, name: str) -> dict:
        value = self.policies.get(name)
        return value if isinstance(value, dict) else {}

    def outcome(self, probe_id: str) -> "str | None":
        result = self.probes.get(probe_id)
        return result.get("outcome") if isinstance(result, dict) else None

    def execmem_denied(self) -> "str | None":
        """An anonymous RX-only mmap refused with EACCES: only SELinux execmem does that."""
        for pid in ("map_rx", "mprotect_rx_noop"):
            r = self.probes.get(pid) or {}
            if r.get("outcome") == "denied" and r.get("errno_name") == "EACCES" and \
                    str(r.get("step", "")).startswith("mmap"):
                return pid
        return None

    def execmem_allowed(self) -> bool:
        return self.outcome("map_rx") == "allowed"

    def noop_refused(self) -> "dict | None":
        r = self.probes.get("mprotect_rx_noop") or {}
        if r.get("step") == "mprotect_rx" and (
                (r.get("outcome") == "denied" and r.get("errno_name") == "EPERM")
                or r.get("signal") == "SIGSYS"):
            return r
        return None


class Op:
    """The operation a probe was doing when it failed."""

    def __init__(self, probe_id: str, result: dict) -> None:
        self.probe = probe_id
        self.step = result.get("step") or ""
        self.memory = probe_memory(probe_id)
        # repatch_rx / patch_rwx map their live code from a memfd or file where the flip
        # is refused: the later steps then work on a private file mapping.
        self.live_code = result.get("live_code")
        if self.live_code in ("memfd", "file"):
            self.memory = "private_file"
        self.call, self.after = _call_of(self.step)
        self.before = None
        if probe_id == "read_implies_exec" and self.call == "mmap":
            self.after = "rwx"    # the personality makes the kernel add X to the RW request
        if self.call == "mprotect":
            self.before = _perms_before(result.get("steps") or [], self.step)
            if self.before is None and self.memory in ("heap", "stack"):
                self.before = "rw"

    @property
    def wants_x(self) -> bool:
        return bool(self.after) and "x" in self.after

    @property
    def w_and_x(self) -> bool:
        return bool(self.after) and "w" in self.after and "x" in self.after

    @property
    def gains_x(self) -> bool:
        return self.wants_x and self.call == "mprotect" and (self.before is None or "x" not in self.before)

    @property
    def x_to_w(self) -> bool:
        return self.call == "mprotect" and bool(self.before) and "x" in self.before and "w" in self.after

    @property
    def changes_x(self) -> bool:
        """An mprotect that adds X, or makes executable memory writable."""
        return self.call == "mprotect" and (self.gains_x or self.x_to_w)

    @property
    def noop_x(self) -> bool:
        return self.call == "mprotect" and self.before == self.after and self.wants_x

    def describe(self) -> str:
        if self.call == "mprotect":
            return "%s (%s -> %s)" % (self.step, _show(self.before), _show(self.after))
        if self.call == "open" and self.probe in OPEN_CALL:
            return "%s (%s)" % (self.step, OPEN_CALL[self.probe])
        return self.step or "an unknown step"


def _call_of(step):
    """(call, permissions asked for) of a step name."""
    m = _STEP.match(step)
    if m:
        return m.group(1), m.group(2)
    if step.startswith("call"):
        return "call", None
    return (step or None), None


def _perms_before(steps, failing):
    """Permissions of the mapping before the failing step (from the steps' perms)."""
    upto = steps[:-1] if steps and steps[-1].get("name") == failing else steps
    last = next((s["perms"] for s in reversed(upto) if s.get("perms")), None)
    if last is None:
        return None
    return "".join(c for c in last[:3] if c != "-")


def _show(perms):
    if not perms:
        return "?"
    return "".join(c if c in perms else "-" for c in "rwx")


class Observation:
    """How a probe ended, in the terms the rules match on."""

    def __init__(self, result: dict, op: Op) -> None:
        self.err = result.get("errno_name")
        self.sig = result.get("signal")
        self.dropped = bool(result.get("exec_dropped"))
        self.denied = result.get("outcome") == "denied" and not self.dropped
        self.what = op.describe()

    def refused(self, op: Op, errno_name: str) -> bool:
        """Denied with errno_name at an mmap/mprotect that asks for X or makes X writable."""
        return self.denied and self.err == errno_name and op.call in ("mmap", "mprotect") and (
            op.wants_x or op.x_to_w)


# Candidates of one observation are listed in this order of their rules (`rank`), so
# that reports keep one stable order whatever module a rule lives in.
RANK_SIGNAL, RANK_DROPPED, RANK_EACCES, RANK_EPERM, RANK_OTHER = 0, 100, 200, 300, 400

# A mechanism module's OSES when it applies on every OS.
ANY_OS = ("any",)


def applies_on(oses: tuple, os_name: "str | None") -> bool:
    """Whether a mechanism for `oses` can act on os_name (unknown OS: it can)."""
    return os_name is None or oses == ANY_OS or os_name in oses
