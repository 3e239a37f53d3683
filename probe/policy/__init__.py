"""Policy detection: which W^X / NX mechanisms this host and process run under.

    detect(root=None, os_name=None, env=None) -> {detector name: result dict}

Detectors are small objects in an ordered registry (DETECTORS). Each says whether it
applies to an OS (and why not) and returns a dict with at least `state`, the evidence
it read, and `reason` when it could not decide. A missing or unreadable source gives
state `unknown` with the reason, never an exception.

All reads go through one Source. On the live host it reads /proc, /sys, ... and calls
prctl/procctl/sysctl; given `root` (a fixture tree, see tests/fixtures/) every path is
taken under that root, sysctls come from <root>/sysctl.txt, the `mount` listing from
<root>/mount.txt and the few values only a system call can give (PR_GET_MDWE,
PROC_WXMAP_STATUS, the interpreter's xattr) from <root>/calls.txt.
"""

import os
import sys

from probe.platform.procfs import parse_status
from probe.policy import parse as _parse
from probe.vocab import POLICY_STATES

# States a detector may report (documented in the schema fragment).
STATES = POLICY_STATES


class Unavailable(Exception):
    """A source that cannot be read; str() is the reason shown in the report."""


class Source:
    """Where detectors read from: the live host (root None) or a fixture tree."""

    def __init__(self, root=None, os_name=None, env=None, executable=None):
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
    def path(self, logical):
        if self.live:
            return logical
        return os.path.join(self.root, logical.lstrip("/"))

    def read_bytes(self, logical, limit=-1):
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

    def read_text(self, logical, limit=-1):
        return self.read_bytes(logical, limit).decode("utf-8", "replace")

    def exists(self, logical):
        return os.path.exists(self.path(logical))

    def status(self):
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

    # -- values only a system call gives ---------------------------------------
    def calls(self):
        """<root>/calls.txt of a fixture: `name: value` lines."""
        if "calls" not in self._cache:
            try:
                self._cache["calls"] = _parse.parse_kv(self.read_text("/calls.txt"))
            except Unavailable:
                self._cache["calls"] = None
        return self._cache["calls"]

    def recorded(self, name):
        """A value recorded in calls.txt; raises Unavailable when the fixture has none."""
        calls = self.calls()
        if calls is None or name not in calls:
            raise Unavailable("the fixture records no %s (calls.txt)" % name)
        return calls[name]

    def executable(self):
        """Path of the running interpreter binary (what PaX markings are read from)."""
        if self._executable:
            return self._executable
        if not self.live:
            calls = self.calls() or {}
            return calls.get("executable") or None
        try:
            return os.readlink("/proc/self/exe")
        except OSError:
            return os.path.realpath(sys.executable) if sys.executable else None

    def exe_header(self, limit=65536):
        """The leading bytes (ELF headers) of the interpreter binary. A fixture keeps
        them at <root>/proc/self/exe, where Linux shows the running binary."""
        if not self.live or self.os_name == "linux":
            try:
                return self.read_bytes("/proc/self/exe", limit)
            except Unavailable:
                if not self.live or not sys.executable:
                    raise
        path = os.path.realpath(sys.executable)
        try:
            with open(path, "rb") as f:
                return f.read(limit)
        except OSError as exc:
            raise Unavailable(_oserror(path, exc))

    def pointer_bits(self):
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
    def sysctl(self, name):
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
        key = ("sysctl", name)
        if key not in self._cache:
            self._cache[key] = _live_sysctl(name)
        value = self._cache[key]
        if isinstance(value, Unavailable):
            raise value
        return value

    def mount_listing(self):
        """`mount` output (the BSDs have no mountinfo)."""
        if not self.live:
            return self.read_text("/mount.txt")
        if "mount" not in self._cache:
            self._cache["mount"] = _run(["mount"])
        value = self._cache["mount"]
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

    def kernel_release(self):
        if self.live:
            return os.uname().release
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


def _run(argv, timeout=5):
    import subprocess
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as exc:
        return Unavailable("cannot run %s: %s" % (" ".join(argv), exc))
    if proc.returncode != 0:
        return Unavailable("%s failed: %s" % (" ".join(argv), (proc.stderr.strip().splitlines()
                                                                or ["exit %d" % proc.returncode])[0]))
    return proc.stdout


def _live_sysctl(name):
    """sysctlbyname() for integer sysctls where libc has it, else `sysctl -n`."""
    import ctypes
    from probe.platform import libc as _libc
    fn = _libc.symbol("sysctlbyname", ctypes.c_int,
                      [ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t),
                       ctypes.c_void_p, ctypes.c_size_t])
    if fn is not None:
        buf = ctypes.c_int64(0)
        size = ctypes.c_size_t(8)
        ctypes.set_errno(0)
        if fn(name.encode(), ctypes.byref(buf), ctypes.byref(size), None, 0) == 0:
            if size.value == 4:
                return str(ctypes.c_int32(buf.value & 0xFFFFFFFF).value)
            if size.value == 8:
                return str(buf.value)
        else:
            import errno
            err = ctypes.get_errno()
            if err == errno.ENOENT:
                return None
            if err != errno.ENOMEM:   # ENOMEM: not an integer; let the command print it
                return Unavailable("sysctl %s: %s" % (name, os.strerror(err)))
    out = _run(["sysctl", "-n", name])
    if isinstance(out, Unavailable):
        text = str(out)
        if any(m in text for m in ("unknown oid", "No such", "not found", "level name")):
            return None
        return out
    return out.strip()


# --- registry ------------------------------------------------------------------------


class Detector:
    """One mechanism's evidence. Subclasses set name/oses/title and implement read()."""

    name = None
    title = ""
    oses = ()

    def applies(self, os_name):
        """None when this detector applies to os_name, else the reason it does not."""
        if os_name in self.oses:
            return None
        return "%s applies to %s only" % (self.title or self.name, ", ".join(self.oses))

    def read(self, src):
        raise NotImplementedError


DETECTORS = []


def register(cls):
    DETECTORS.append(cls())
    return cls


def unknown(reason, **fields):
    out = {"state": "unknown"}
    out.update(fields)
    out["reason"] = reason
    return out


def _load():
    # Importing the modules fills DETECTORS in registry order.
    from probe.policy import linux as _linux  # noqa: F401
    from probe.policy import bsd as _bsd  # noqa: F401
    from probe.policy import mounts as _mounts  # noqa: F401


def detect(root=None, os_name=None, env=None, executable=None, include_inapplicable=False):
    """Run every detector that applies; {name: result} in registry order. Never raises.

    root: a fixture tree to read instead of the live host. os_name: override the OS
    (default: the host's, or the fixture's uname.txt). env: the environment that decides
    $TMPDIR (default os.environ, or the fixture's proc/self/environ). executable: the
    interpreter whose PaX markings count (default the running one).
    include_inapplicable: also list detectors for other OSes, with state
    `not_applicable` and the reason they do not apply.
    """
    _load()
    try:
        src = Source(root, os_name, env, executable)
    except Exception as exc:  # noqa: BLE001 - detect() never raises
        return {"_source": unknown("cannot set up the policy sources: %s: %s"
                                   % (type(exc).__name__, exc))}
    out = {}
    for det in DETECTORS:
        why_not = det.applies(src.os_name)
        if why_not is not None:
            if include_inapplicable:
                out[det.name] = {"state": "not_applicable", "reason": why_not}
            continue
        try:
            result = det.read(src)
        except Unavailable as exc:
            result = unknown(str(exc))
        except Exception as exc:  # noqa: BLE001 - one broken detector must not sink the rest
            result = unknown("memprobe could not evaluate this source: %s: %s"
                             % (type(exc).__name__, exc))
        out[det.name] = result
    return out


def registry():
    """[(name, title, oses)] of every detector, in order (for docs and `list`)."""
    _load()
    return [(d.name, d.title, d.oses) for d in DETECTORS]


def unmarked_interpreter(executable=None, directory=None, force=False, verify=True):
    """A copy of the interpreter without PaX markings, to run the probes under the
    kernel's default flags. See probe.policy.unmarked for the details."""
    from probe.policy import unmarked as _unmarked
    return _unmarked.unmarked_interpreter(executable, directory, force, verify)


def discard_unmarked(info):
    from probe.policy import unmarked as _unmarked
    return _unmarked.discard(info)
