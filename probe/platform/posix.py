"""What every POSIX host offers; the platform modules build on it (psutil's _psposix).

Also the platform module for hosts memprobe has no dedicated module for (macOS, ...):
probes that need something more say `skipped` with the reason.
"""

import os
import sys

try:  # imported up front: a forked probe child must not need the file system to import
    import _posixshmem
except ImportError:  # pragma: no cover - built without POSIX shared memory
    _posixshmem = None

SKIP_NO_MEMFD = "memfd_create is not available on this OS"
SKIP_NO_PERSONALITY = "personality(2) is Linux-only"


def hostname():
    # uname's nodename is what gethostname() returns (C libraries implement one with the
    # other), without importing the socket module into every run.
    return os.uname().nodename.split(".")[0] or "unknown"


def uname():
    u = os.uname()
    return {"kernel_release": u.release, "kernel_version": u.version, "machine": u.machine}


def python_info():
    if sys.implementation.name == "cpython":
        # What the platform module would parse out of sys.version, without importing it.
        return {"implementation": "CPython", "version": sys.version.split()[0]}
    import platform
    return {"implementation": platform.python_implementation(), "version": platform.python_version()}


def emulator():
    """(emulator binary, its argv, the guest's argv) when a user-mode emulator runs us."""
    return None


def interpreter_command() -> list:
    """The command that starts this interpreter afresh (for --isolation spawn)."""
    return [sys.executable]


def provenance():
    """How this report was produced: detected, or said by a rig in MEMPROBE_PROVENANCE as
    `method:emulator` (e.g. `qemu-user:qemu-aarch64 7.2.0`)."""
    return _provenance(None)


def _provenance(detected):
    value = os.environ.get("MEMPROBE_PROVENANCE", "")
    out = {"method": "native", "emulator": None}
    if value:
        method, _, emu = value.partition(":")
        out = {"method": method or "native", "emulator": emu or None}
    elif detected:
        out = detected
    note = os.environ.get("MEMPROBE_PROVENANCE_NOTE")   # e.g. the confinement it ran under
    if note:
        out["note"] = note
    return out


def distribution():
    import platform
    return {"id": None, "name": platform.system() or None, "version": platform.release() or None}


def libc_info():
    import platform
    name, version = platform.libc_ver()
    return {"name": name or None, "version": version or None}


def cpu_nx(arch_name):
    return None


def mapping_perms(addr):
    """Permissions of the mapping holding addr as the OS reports them ('r-xp'), or None."""
    return None


def memfd(size):
    raise NotImplementedError(SKIP_NO_MEMFD)


def shm_fd(size):
    """An unlinked POSIX shared-memory object of `size` bytes."""
    if _posixshmem is None:
        raise NotImplementedError("this Python has no POSIX shared memory (_posixshmem)")
    name = "/memprobe-%d-%s" % (os.getpid(), os.urandom(4).hex())
    fd = _posixshmem.shm_open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL, mode=0o600)
    # Unlinked before use: nothing stays behind in /dev/shm even if the probe crashes.
    _posixshmem.shm_unlink(name)
    os.ftruncate(fd, size)
    return fd


def set_read_implies_exec():
    raise NotImplementedError(SKIP_NO_PERSONALITY)


def seccomp_filtered() -> bool:
    """Whether a seccomp filter is attached: only Linux has seccomp."""
    return False


def process_info():
    return {
        "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
        "interpreter": sys.executable or None,
        "personality": None, "read_implies_exec": None,
        "seccomp_mode": None, "seccomp_filters": None, "no_new_privs": None, "mdwe": None,
    }


def maps_snapshot():
    """All mappings of this process as (start, end, perms, path), or None where the OS has no source."""
    return None


# --- host reads the policy sources make -----------------------------------------------------

# The system calls a policy source makes on the live host, by their calls.txt names
# (none beyond the generic ones on hosts without a dedicated module).
RECORDED_CALLS = {}


def running_binary() -> "str | None":
    """Path of the running interpreter binary: /proc/self/exe where there is one."""
    try:
        return os.readlink("/proc/self/exe")
    except OSError:
        return os.path.realpath(sys.executable) if sys.executable else None


def pax_xattr_call(target: str) -> "str | None":
    """user.pax.flags of target; None when it has none (or its file system has no user
    xattrs). Raises OSError(reason) when it cannot be read."""
    import errno
    try:
        return os.getxattr(target, "user.pax.flags").decode("ascii", "replace")
    except AttributeError:
        raise OSError("this Python cannot read extended attributes")
    except OSError as exc:
        if exc.errno in (errno.ENODATA, getattr(errno, "ENOATTR", errno.ENODATA)):
            return None
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return None   # a file system without user xattrs cannot carry the marking
        raise OSError("cannot read user.pax.flags of %s: %s" % (target, exc.strerror))


def run_command(argv: list, timeout: float = 5) -> str:
    """stdout of a short command; raises OSError(reason) when it fails."""
    import subprocess
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as exc:
        raise OSError("cannot run %s: %s" % (" ".join(argv), exc))
    if proc.returncode != 0:
        raise OSError("%s failed: %s" % (" ".join(argv), (proc.stderr.strip().splitlines()
                                                          or ["exit %d" % proc.returncode])[0]))
    return proc.stdout


def _sysctlbyname(name):
    """An integer sysctl through libc: its text, None when it does not exist, False when
    libc cannot tell (no sysctlbyname, or not an integer). Raises OSError(reason)."""
    import ctypes
    import errno
    from probe.platform import libc as _libc
    fn = _libc.symbol("sysctlbyname", ctypes.c_int,
                      [ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t),
                       ctypes.c_void_p, ctypes.c_size_t])
    if fn is None:
        return False
    buf = ctypes.c_int64(0)
    size = ctypes.c_size_t(8)
    ctypes.set_errno(0)
    if fn(name.encode(), ctypes.byref(buf), ctypes.byref(size), None, 0) == 0:
        if size.value == 4:
            return str(ctypes.c_int32(buf.value & 0xFFFFFFFF).value)
        return str(buf.value) if size.value == 8 else False
    err = ctypes.get_errno()
    if err == errno.ENOENT:
        return None
    if err != errno.ENOMEM:   # ENOMEM: not an integer; let the command print it
        raise OSError("sysctl %s: %s" % (name, os.strerror(err)))
    return False


def sysctl_value(name: str) -> "str | None":
    """A sysctl as text: sysctlbyname() for integers where libc has it, else `sysctl -n`;
    None when the sysctl does not exist. Raises OSError(reason) when it cannot be read."""
    value = _sysctlbyname(name)
    if value is not False:
        return value
    try:
        return run_command(["sysctl", "-n", name]).strip()
    except OSError as exc:
        if any(m in str(exc) for m in ("unknown oid", "No such", "not found", "level name")):
            return None
        raise
