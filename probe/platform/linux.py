"""Linux: /proc readers and the Linux-only calls (memfd, personality, MDWE)."""

from __future__ import annotations

import ctypes
import errno
import fcntl  # imported here, not in the probe child: it may no longer read the stdlib
import os
import struct

from probe.platform import libc as _libc
from probe.platform.posix import (  # noqa: F401 - re-exported: the platform module is the API
    SKIP_NO_MEMFD, SKIP_NO_PERSONALITY, hostname, python_info, shm_fd, uname)
from probe.platform import posix as _posix
from probe.platform.procfs import parse_status  # noqa: F401 - one parser for /proc/*/status

from probe.platform.constants import PR_GET_MDWE, PR_SET_DUMPABLE, READ_IMPLIES_EXEC

# Names for the type checker only: importing typing would slow `memprobe run` down.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# The host's own /proc and /etc. Fixture trees are read through probe.policy.Source(root),
# the one root tests redirect; the report's host facts always describe the live host.
ROOT = "/"


def _read(*parts):
    with open(os.path.join(ROOT, *parts), "rb") as f:
        return f.read().decode("utf-8", "replace")


def parse_os_release(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            out[key.strip()] = value.strip().strip("\"'")
    return out


def parse_maps_line(line: str) -> tuple[int, int, str, str]:
    """(start, end, perms, path) of one /proc/<pid>/maps line."""
    fields = line.split(None, 5)
    start, _, end = fields[0].partition("-")
    path = fields[5].strip() if len(fields) > 5 else ""
    return int(start, 16), int(end, 16), fields[1], path


def distribution() -> dict[str, str | None]:
    for name in ("etc/os-release", "usr/lib/os-release"):
        try:
            info = parse_os_release(_read(name))
        except OSError:
            continue
        return {"id": info.get("ID"), "name": info.get("NAME"),
                # sid/testing have no VERSION_ID: the codename is what identifies them
                "version": info.get("VERSION_ID") or info.get("VERSION") or info.get("VERSION_CODENAME")}
    return {"id": None, "name": None, "version": None}


def libc_info() -> dict[str, str | None]:
    try:
        value = os.confstr("CS_GNU_LIBC_VERSION")   # 'glibc 2.36'; cheap, no file scan
    except (ValueError, OSError):
        value = None
    if value:
        name, _, version = value.partition(" ")
        return {"name": name, "version": version or None}
    return _posix.libc_info()


def cpu_nx(arch_name: str) -> bool | None:
    """The `nx` CPU flag on x86; None elsewhere (other CPUs have no such flag in cpuinfo,
    and under qemu-user cpuinfo describes the host, not the guest)."""
    if arch_name not in ("x86_64", "i386"):
        return None
    try:
        text = _read("proc/cpuinfo")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return "nx" in line.split(":", 1)[1].split()
    return None


def maps_snapshot() -> list[tuple[int, int, str, str]] | None:
    try:
        with open("/proc/self/maps") as f:
            return [parse_maps_line(line) for line in f if line.strip()]
    except OSError:
        return None


# PROCMAP_QUERY (Linux >= 6.11): ask the kernel about one address instead of rendering the
# whole maps file, which costs ~0.3 ms per look in a Python-sized process.
_PROCMAP_QUERY_SIZE = 104
_PROCMAP_QUERY = (3 << 30) | (_PROCMAP_QUERY_SIZE << 16) | (ord("f") << 8) | 17
_procmap_query_works = None
# (pid, fd) of this process's /proc/self/maps for PROCMAP_QUERY: opened once and kept, so
# a probe reads its mappings back without needing a free descriptor at each step. The pid
# tells a forked child that a descriptor it inherited describes its parent.
_maps_fd = (None, None)


def _own_maps_fd():
    """A descriptor on this process's /proc/self/maps; OSError where it cannot be opened."""
    global _maps_fd
    pid = os.getpid()
    if _maps_fd[0] != pid:
        _maps_fd = (pid, os.open("/proc/self/maps", os.O_RDONLY | os.O_CLOEXEC))
    return _maps_fd[1]


def _query_perms(fd, addr):
    """'rwxp'-style perms via PROCMAP_QUERY, or None when the kernel has no such ioctl."""
    global _procmap_query_works
    if _procmap_query_works is False:
        return None
    buf = bytearray(_PROCMAP_QUERY_SIZE)
    struct.pack_into("=QQQ", buf, 0, _PROCMAP_QUERY_SIZE, 0, addr)
    try:
        fcntl.ioctl(fd, _PROCMAP_QUERY, buf)
    except OSError as exc:
        if exc.errno == errno.ENOENT:        # no mapping at addr
            _procmap_query_works = True
            return ""
        _procmap_query_works = False         # ENOTTY/EINVAL: older kernel
        return None
    _procmap_query_works = True
    flags = struct.unpack_from("=Q", buf, 40)[0]
    return "%s%s%s%s" % ("r" if flags & 1 else "-", "w" if flags & 2 else "-",
                         "x" if flags & 4 else "-", "s" if flags & 8 else "p")


def mapping_perms(addr: int) -> str | None:
    """Permissions of the mapping holding addr ('r-xp'), None where no mapping holds it.

    Raises OSError where the maps cannot be read (no /proc, no descriptor left): the
    caller records the read-back as unavailable."""
    # Always our own mappings: this is the running process, never a fixture tree.
    perms = _query_perms(_own_maps_fd(), addr)
    if perms is not None:
        return perms or None
    # Opened afresh for each look: qemu-user renders its emulated maps file at open time.
    with open("/proc/self/maps") as f:
        for line in f:
            start, end, perms, _ = parse_maps_line(line)
            if start <= addr < end:
                return perms
    return None


def memfd(size: int) -> int:
    if not hasattr(os, "memfd_create"):
        raise NotImplementedError(SKIP_NO_MEMFD)
    fd = os.memfd_create("memprobe", os.MFD_CLOEXEC)
    os.ftruncate(fd, size)
    return fd


def _personality(value):
    fn = _libc.symbol("personality", ctypes.c_int, [ctypes.c_ulong])
    if fn is None:
        raise NotImplementedError("this C library has no personality()")
    ctypes.set_errno(0)
    return _libc.check(fn(value))


def set_read_implies_exec() -> int:
    current = _personality(0xFFFFFFFF)
    _personality(current | READ_IMPLIES_EXEC)
    return _personality(0xFFFFFFFF)


_prctl_fn = []


def _prctl():
    if not _prctl_fn:
        _prctl_fn.append(_libc.symbol("prctl", ctypes.c_int, [
            ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]))
    return _prctl_fn[0]


def preload() -> None:
    """Resolve in the parent what forked probe children call."""
    _prctl()


def get_mdwe() -> int | None:
    """PR_GET_MDWE: 0 off, 1 refuse exec gain, 3 + no inherit; None before Linux 6.3."""
    prctl = _prctl()
    if prctl is None:
        return None
    ctypes.set_errno(0)
    value = prctl(PR_GET_MDWE, 0, 0, 0, 0)
    return None if value < 0 else value


def mdwe_call() -> str:
    """prctl(PR_GET_MDWE) as a fixture's calls.txt records it: the value, or EINVAL on
    kernels before Linux 6.3. Raises OSError(reason) when it cannot be asked."""
    prctl = _prctl()
    if prctl is None:
        raise OSError("this C library has no prctl()")
    ctypes.set_errno(0)
    value = prctl(PR_GET_MDWE, 0, 0, 0, 0)
    if value < 0:
        err = ctypes.get_errno()
        if err == errno.EINVAL:
            return "EINVAL"
        raise OSError("prctl(PR_GET_MDWE): %s" % os.strerror(err))
    return str(value)


# The system calls a policy source makes on the live host, by their calls.txt names.
RECORDED_CALLS = {"prctl PR_GET_MDWE": mdwe_call}


def process_info() -> dict[str, Any]:
    info = _posix.process_info()
    try:
        status = parse_status(_read("proc/self/status"))
    except OSError:
        status = {}
    try:
        pers = int(_read("proc/self/personality").strip(), 16)
    except (OSError, ValueError):
        pers = None
    info.update({
        "personality": None if pers is None else "0x%08x" % pers,
        "read_implies_exec": None if pers is None else bool(pers & READ_IMPLIES_EXEC),
        "seccomp_mode": _int(status.get("Seccomp")),
        "seccomp_filters": _int(status.get("Seccomp_filters")),
        "no_new_privs": None if "NoNewPrivs" not in status else status["NoNewPrivs"] == "1",
        "mdwe": get_mdwe(),
    })
    return info


def seccomp_filtered() -> bool | None:
    """Whether a seccomp filter is attached to this process (Seccomp: 2 in its status);
    None where /proc cannot tell."""
    try:
        mode = parse_status(_read("proc/self/status")).get("Seccomp")
    except OSError:
        return None
    return None if mode is None else str(mode).strip() == "2"


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None



def disable_core_dumps() -> None:
    """RLIMIT_CORE 0 is not enough where core_pattern pipes to a helper (systemd-coredump,
    apport): a non-dumpable process never dumps."""
    prctl = _prctl()
    if prctl is not None:
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


# --- user-mode emulation (qemu-user) ---------------------------------------------------
# qemu-user fakes /proc/self/{exe,cmdline,maps,auxv} for the guest but not /proc/thread-self:
# the two exe links differ exactly when an emulator runs this process.

def _readlink(path):
    try:
        return os.readlink(path)
    except OSError:
        return None


def _proc_argv(path):
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return [a.decode("utf-8", "surrogateescape") for a in raw.split(b"\0")[:-1]]


def emulator() -> tuple[str, list[str] | None, list[str] | None] | None:
    guest = _readlink("/proc/self/exe")
    host = _readlink("/proc/thread-self/exe")
    if not guest or not host or guest == host:
        return None
    return host, _proc_argv("/proc/thread-self/cmdline"), _proc_argv("/proc/self/cmdline")


def interpreter_command() -> list[str]:
    import sys
    emu = emulator()
    if emu:
        return _emulated_command(emu, sys.executable)
    return _loader_command(sys.executable) or [sys.executable]


def _emulated_command(emu, executable):
    """Under qemu-user: the emulator's own prefix (`qemu-aarch64 -L ROOT`), with its options."""
    host_exe, host_argv, guest_argv = emu
    if host_argv and guest_argv and len(host_argv) > len(guest_argv) \
            and host_argv[-len(guest_argv):] == guest_argv:
        return host_argv[:-len(guest_argv)] + [executable]
    from probe.errors import HostError
    raise HostError("--isolation spawn: this interpreter runs under %s and its command line "
                    "cannot be recovered; set MEMPROBE_INTERPRETER or use --isolation fork"
                    % os.path.basename(host_exe))


def _loader_command(executable):
    """Started through the dynamic loader (`ld.so --library-path DIRS python`): exe is the
    loader; the command line up to the interpreter. None when started directly."""
    exe = _readlink("/proc/self/exe")
    real = os.path.realpath(executable)
    if not exe or os.path.realpath(exe) == real:
        return None
    argv = _proc_argv("/proc/self/cmdline") or []
    if not argv or os.path.realpath(argv[0]) != os.path.realpath(exe):
        return None
    for i, arg in enumerate(argv[1:], 1):
        if os.path.realpath(arg) == real:
            return argv[:i + 1]
    return None


def provenance() -> dict[str, str | None]:
    detected = None
    if not os.environ.get("MEMPROBE_PROVENANCE"):
        emu = emulator()
        if emu:
            name = os.path.basename(emu[0])
            detected = {"method": "qemu-user" if name.startswith("qemu-") else "emulated",
                        "emulator": _emulator_version(emu[0])}
    return _posix._provenance(detected)


def _emulator_version(host_exe):
    import re
    import subprocess
    name = os.path.basename(host_exe)
    try:
        text = subprocess.run([host_exe, "--version"], capture_output=True, text=True, timeout=10,
                              stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.SubprocessError):
        text = ""
    m = re.search(r"^(\S+) version (\d[\w.]*)", text, re.M)
    if m:
        return "%s %s" % (os.path.basename(m.group(1)), m.group(2))   # 'qemu-aarch64 7.2.22'
    return name[:-len("-static")] if name.endswith("-static") else name
