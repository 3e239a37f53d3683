"""FreeBSD, HardenedBSD, NetBSD, OpenBSD, DragonFly: the calls that differ from Linux.

Written for real hosts and exercised there; on the Linux test machine only the pure
parts are tested.
"""

import ctypes
import os
import platform

from probe.platform import libc as _libc
from probe.platform.constants import P_PID, PROC_WXMAP_STATUS, SHM_ANON
from probe.platform.posix import (  # noqa: F401 - re-exported: the platform module is the API
    SKIP_NO_MEMFD, SKIP_NO_PERSONALITY, cpu_nx, emulator, hostname, interpreter_command,
    process_info, provenance,
    python_info, seccomp_filtered, set_read_implies_exec, uname)
from probe.platform import posix as _posix



def distribution():
    return {"id": platform.system().lower() or None, "name": platform.system() or None,
            "version": platform.release() or None}


def libc_info():
    return {"name": "%s libc" % (platform.system() or "bsd"), "version": platform.release() or None}


def maps_snapshot():
    try:
        import psutil
        maps = psutil.Process().memory_maps(grouped=False)
    except Exception:  # noqa: BLE001 - psutil lacks memory maps on some BSDs
        return None
    out = []
    for m in maps:
        start, _, end = m.addr.partition("-")
        out.append((int(start, 16), int(end, 16), m.perms, m.path))
    return out


def mapping_perms(addr):
    for start, end, perms, _ in maps_snapshot() or ():
        if start <= addr < end:
            return perms
    return None


def memfd(size):
    # FreeBSD >= 13 has memfd_create in libc; SHM_ANON works since 8.0 and is what .NET uses.
    fn = _libc.symbol("memfd_create", ctypes.c_int, [ctypes.c_char_p, ctypes.c_uint])
    if fn is None:
        raise NotImplementedError(SKIP_NO_MEMFD)
    fd = _libc.check(fn(b"memprobe", 0))
    os.ftruncate(fd, size)
    return fd


def shm_fd(size):
    fn = _libc.symbol("shm_open", ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, ctypes.c_int])
    if fn is not None and platform.system() == "FreeBSD":
        fd = _libc.check(fn(SHM_ANON, os.O_RDWR, 0o600))
        os.ftruncate(fd, size)
        return fd
    return _posix.shm_fd(size)


def wxmap_call() -> str:
    """procctl(PROC_WXMAP_STATUS) of this process as a fixture's calls.txt records it
    (FreeBSD 13). Raises OSError(reason) when it cannot be asked."""
    fn = _libc.symbol("procctl", ctypes.c_int,
                      [ctypes.c_int, ctypes.c_int64, ctypes.c_int, ctypes.c_void_p])
    if fn is None:
        raise OSError("this C library has no procctl()")
    value = ctypes.c_int(0)
    ctypes.set_errno(0)
    if fn(P_PID, os.getpid(), PROC_WXMAP_STATUS, ctypes.byref(value)) != 0:
        err = ctypes.get_errno()
        raise OSError("procctl(PROC_WXMAP_STATUS): %s (FreeBSD before 13?)" % os.strerror(err))
    return "0x%08x" % (value.value & 0xFFFFFFFF)


# The system calls a policy source makes on the live host, by their calls.txt names.
RECORDED_CALLS = {"procctl PROC_WXMAP_STATUS": wxmap_call}
