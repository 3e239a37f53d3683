"""What every POSIX host offers; the platform modules build on it (psutil's _psposix).

Also the platform module for hosts memprobe has no dedicated module for (macOS, ...):
probes that need something more say `skipped` with the reason.
"""

import os
import platform
import socket
import sys

try:  # imported up front: a forked probe child must not need the file system to import
    import _posixshmem
except ImportError:  # pragma: no cover - built without POSIX shared memory
    _posixshmem = None

SKIP_NO_MEMFD = "memfd_create is not available on this OS"
SKIP_NO_PERSONALITY = "personality(2) is Linux-only"


def hostname():
    try:
        return socket.gethostname().split(".")[0] or "unknown"
    except OSError:
        return "unknown"


def uname():
    u = os.uname()
    return {"kernel_release": u.release, "kernel_version": u.version, "machine": u.machine}


def python_info():
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
    return {"id": None, "name": platform.system() or None, "version": platform.release() or None}


def libc_info():
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
