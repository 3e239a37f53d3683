"""Where policy detectors read from, and what a detector is.

The detectors themselves live with their mechanism (probe.mechanisms) or, for facts that
are no mechanism (kernel config, personality), in probe.policy.facts; probe.mechanisms
.detect() runs them. Each says whether it applies to an OS (and why not) and returns a
dict with at least `state`, the evidence it read, and `reason` when it could not decide.
A missing or unreadable source gives state `unknown` with the reason, never an exception.

All reads go through one Source, the one root tests redirect. On the live host it reads /proc, /sys, ... and calls
prctl/procctl/sysctl; given `root` (a fixture tree, see tests/fixtures/) every path is
taken under that root, sysctls come from <root>/sysctl.txt, the `mount` listing from
<root>/mount.txt and the few values only a system call can give (PR_GET_MDWE,
PROC_WXMAP_STATUS, the interpreter's xattr) from <root>/calls.txt.
"""

import os
import sys
from typing import Callable

from probe.platform.procfs import parse_status
from probe.policy import parse as _parse
from probe.vocab import POLICY_STATES

# States a detector may report (documented in the schema fragment).
STATES = POLICY_STATES


class Unavailable(Exception):
    """A source that cannot be read; str() is the reason shown in the report."""


class Source:
    """Where detectors read from: the live host (root None) or a fixture tree."""

    def __init__(self, root: "str | None" = None, os_name: "str | None" = None,
                 env: "dict | None" = None, executable: "str | None" = None) -> None:
        self.root = root
        self.live = root is None
        self._cache = {}
        if os_name is None:
            os_name = self._fixture_os() if root is not None else _host_os()
        self.os_name = os_name
        # On the live host with its own environment, the temporary directory is the one
        # Python's tempfile picks (what the file-backed probes use).
        self.own_env = env is None and self.live
        if env is None:
            env = dict(os.environ) if self.live else self._fixture_env()
        self.env = env
        self._executable = executable

    # -- files ---------------------------------------------------------------
    def path(self, logical: str) -> str:
        if self.live:
            return logical
        return os.path.join(self.root, logical.lstrip("/"))

    def read_bytes(self, logical: str, limit: int = -1) -> bytes:
        key = ("bytes", logical, limit)
        if key not in self._cache:
            try:
                with open(self.path(logical), "rb") as f:
                    self._cache[key] = f.read(limit)
            except OSError as exc:
                self._cache[key] = Unavailable(_oserror(logical, exc))
        value = self._cache[key]
        if isinstance(value, Unavailable):
            raise value
        return value

    def read_text(self, logical: str, limit: int = -1) -> str:
        return self.read_bytes(logical, limit).decode("utf-8", "replace")

    def exists(self, logical: str) -> bool:
        return os.path.exists(self.path(logical))

    def status(self) -> dict:
        """/proc/self/status parsed once for every detector that needs it."""
        if "status" not in self._cache:
            try:
                self._cache["status"] = parse_status(self.read_text("/proc/self/status"))
            except Unavailable as exc:
                self._cache["status"] = exc
        value = self._cache["status"]
        if isinstance(value, Unavailable):
            raise value
        return value

    def cached(self, key: "str | tuple", compute: "Callable[[], object]") -> object:
        """compute() once per source (a value or an Unavailable to raise later)."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    # -- values only a system call gives ---------------------------------------
    def call(self, name: str) -> str:
        """A system call's answer as calls.txt records it (`prctl PR_GET_MDWE`, `procctl
        PROC_WXMAP_STATUS`): recorded in a fixture, asked of the platform layer live."""
        if not self.live:
            return self.recorded(name)
        from probe.platform import impl
        fn = getattr(impl, "RECORDED_CALLS", {}).get(name)
        if fn is None:
            raise Unavailable("%s cannot be asked on this OS" % name)
        value = self.cached(("call", name), lambda: _live(fn))
        if isinstance(value, Unavailable):
            raise value
        return value

    def pax_xattr(self, path: "str | None" = None) -> "str | None":
        """user.pax.flags of the interpreter (or of path); None when it carries none."""
        if not self.live and path is None:
            value = self.recorded("getxattr user.pax.flags")
            return None if value in ("", "ENODATA", "-") else value
        from probe.platform.posix import pax_xattr_call
        value = _live(pax_xattr_call, path or "/proc/self/exe")
        if isinstance(value, Unavailable):
            raise value
        return value

    def calls(self) -> "dict | None":
        """<root>/calls.txt of a fixture: `name: value` lines."""
        if "calls" not in self._cache:
            try:
                self._cache["calls"] = _parse.parse_kv(self.read_text("/calls.txt"))
            except Unavailable:
                self._cache["calls"] = None
        return self._cache["calls"]

    def recorded(self, name: str) -> str:
        """A value recorded in calls.txt; raises Unavailable when the fixture has none."""
        calls = self.calls()
        if calls is None or name not in calls:
            raise Unavailable("the fixture records no %s (calls.txt)" % name)
        return calls[name]

    def executable(self) -> "str | None":
        """Path of the running interpreter binary (what PaX markings are read from)."""
        if self._executable:
            return self._executable
        if not self.live:
            calls = self.calls() or {}
            return calls.get("executable") or None
        from probe.platform.posix import running_binary
        return running_binary()

    def exe_header(self, limit: int = 65536, path: "str | None" = None) -> bytes:
        """The leading bytes (ELF headers) of the interpreter binary (or of the binary at
        path). A fixture keeps them at <root>/proc/self/exe, where Linux shows the
        running binary."""
        if path is not None:
            return _read_file(path, limit)
        if not self.live or self.os_name == "linux":
            try:
                return self.read_bytes("/proc/self/exe", limit)
            except Unavailable:
                if not self.live or not sys.executable:
                    raise
        return _read_file(os.path.realpath(sys.executable), limit, _oserror)

    def pointer_bits(self) -> "int | None":
        if self.live:
            import struct
            return struct.calcsize("P") * 8
        try:
            words = self.read_text("/uname.txt").split()
        except Unavailable:
            return None
        machine = words[-1] if len(words) >= 3 else ""
        return 64 if "64" in machine else 32

    # -- sysctl ------------------------------------------------------------------
    def sysctl(self, name: str) -> "str | None":
        """A sysctl value as a string; None when the sysctl does not exist on this
        system; raises Unavailable when it cannot be read."""
        if not self.live:
            if "sysctl" not in self._cache:
                try:
                    self._cache["sysctl"] = _parse.parse_kv(self.read_text("/sysctl.txt"))
                except Unavailable as exc:
                    self._cache["sysctl"] = exc
            table = self._cache["sysctl"]
            if isinstance(table, Unavailable):
                raise table
            return table.get(name)
        from probe.platform.posix import sysctl_value
        value = self.cached(("sysctl", name), lambda: _live(sysctl_value, name))
        if isinstance(value, Unavailable):
            raise value
        return value

    def mount_listing(self) -> str:
        """`mount` output (the BSDs have no mountinfo)."""
        if not self.live:
            return self.read_text("/mount.txt")
        from probe.platform.posix import run_command
        value = self.cached("mount", lambda: _live(run_command, ["mount"]))
        if isinstance(value, Unavailable):
            raise value
        return value

    # -- fixture metadata ------------------------------------------------------
    def _fixture_os(self):
        try:
            return _parse.uname_os(self.read_text("/uname.txt")) or "unknown"
        except Unavailable:
            return "linux" if self.exists("/proc") else "unknown"

    def _fixture_env(self):
        try:
            return _parse.parse_environ(self.read_bytes("/proc/self/environ"))
        except Unavailable:
            return {}

    def kernel_release(self) -> "str | None":
        if self.live:
            from probe.platform.posix import uname
            return uname()["kernel_release"]
        try:
            return self.read_text("/proc/sys/kernel/osrelease").strip() or None
        except Unavailable:
            try:
                words = self.read_text("/uname.txt").split()
                return words[1] if len(words) > 1 else None
            except Unavailable:
                return None


def _host_os():
    from probe.platform import OS_NAME
    return OS_NAME


def _oserror(logical, exc):
    import errno
    if exc.errno == errno.ENOENT:
        return "no %s" % logical
    return "cannot read %s: %s" % (logical, exc.strerror or exc)


def _cannot_read(path, exc):
    return "cannot read %s: %s" % (path, exc.strerror)


def _read_file(path, limit, reason=_cannot_read):
    """The first `limit` bytes of a file outside the source's tree (the interpreter)."""
    try:
        with open(path, "rb") as f:
            return f.read(limit)
    except OSError as exc:
        raise Unavailable(reason(path, exc))


def _live(fn, *args):
    """fn(*args) of the platform layer, its OSError turned into an Unavailable value."""
    try:
        return fn(*args)
    except OSError as exc:
        return Unavailable(str(exc))


# --- detectors --------------------------------------------------------------------------


class Detector:
    """What one detector reads. Subclasses set name/oses/title/order and implement read();
    `order` places the detector's entry in a report's `policies`."""

    name = None
    title = ""
    oses = ()
    order = 0

    def applies(self, os_name: str) -> "str | None":
        """None when this detector applies to os_name, else the reason it does not."""
        if os_name in self.oses:
            return None
        return "%s applies to %s only" % (self.title or self.name, ", ".join(self.oses))

    def read(self, src: "Source") -> dict:
        raise NotImplementedError


def unknown(reason: str, **fields) -> dict:
    """A detector result that could not decide, with the reason."""
    out = {"state": "unknown"}
    out.update(fields)
    out["reason"] = reason
    return out


def unmarked_interpreter(executable: "str | None" = None, directory: "str | None" = None,
                         force: bool = False, verify: bool = True) -> dict:
    """A copy of the interpreter without PaX markings, to run the probes under the
    kernel's default flags. See probe.policy.unmarked for the details."""
    from probe.policy import unmarked as _unmarked
    return _unmarked.unmarked_interpreter(executable, directory, force, verify)


def discard_unmarked(info: "dict | None") -> None:
    from probe.policy import unmarked as _unmarked
    return _unmarked.discard(info)
