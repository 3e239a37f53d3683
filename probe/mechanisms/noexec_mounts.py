"""A noexec mount: PROT_EXEC mappings of files on it are refused (EPERM at mmap, EACCES
at mprotect). Read from mountinfo on Linux and from `mount` on the BSDs."""

import os

from probe.mechanisms._base import ACTIVE, ANY_OS, INACTIVE, UNSURE, Facts, Observation, Op
from probe.policy import Detector, Source, unknown
from probe.policy import parse as _parse

MECHANISMS = {"noexec-mount": "a noexec mount"}
OSES = ANY_OS
FIX_HINTS = {"noexec-mount": "point TMPDIR at a directory on a mount without noexec"}

# Which noexec_mounts path a file-backed probe lives on.
PATH_ROLE = {"dual_map_shm": "shm", "dual_map_file": "tmpdir", "patch_file_text": "tmpdir"}
# The same for the repatching probes, by the way they made their live code (`live_code`).
LIVE_CODE_ROLE = {"file": "tmpdir", "memfd": "memfd"}


def path_role(op: Op) -> "str | None":
    """The noexec_mounts path role of the memory `op` worked on, or None."""
    live = getattr(op, "live_code", None)
    return LIVE_CODE_ROLE.get(live) if live else PATH_ROLE.get(op.probe)


# --- detector --------------------------------------------------------------------------


def temp_dir(env: dict) -> str:
    """The directory Python's tempfile (so the dual_map_file and patch_file_text probes)
    uses: $TMPDIR, $TEMP, $TMP, then /tmp."""
    for name in ("TMPDIR", "TEMP", "TMP"):
        if env.get(name):
            return env[name]
    return "/tmp"


def _live_temp_dir():
    from probe.engine import tmpfiles   # tempfile's choice, without tempfile's imports
    try:
        return tmpfiles.default_tmpdir()
    except OSError:
        return temp_dir(os.environ)


def describe_paths(mounts: list, paths: list) -> tuple:
    """(any path on a noexec mount, {role: where the path is mounted})."""
    out = {}
    any_noexec = False
    for role, path in paths:
        m = _parse.mount_for(mounts, path)
        if m is None:
            out[role] = {"path": path, "mount_point": None, "fstype": None, "noexec": None}
            continue
        noexec = _parse.is_noexec(m)
        any_noexec = any_noexec or noexec
        entry = {"path": path, "mount_point": m["mount_point"], "fstype": m["fstype"],
                 "noexec": noexec}
        if "wxallowed" in m["options"]:
            entry["wxallowed"] = True
        out[role] = entry
    return any_noexec, out


def _mounts(src):
    """(parsed mounts, where they came from, [(role, path)] to look up)."""
    if src.os_name == "linux":
        mounts = _parse.parse_mountinfo(src.read_text("/proc/self/mountinfo"))
        return mounts, "/proc/self/mountinfo", [("shm", "/dev/shm"), ("tmp", "/tmp")]
    mounts = _parse.parse_bsd_mount(src.mount_listing())
    # Where shm_open() puts its objects: FreeBSD keeps them in the kernel
    # (SHM_ANON), NetBSD in /var/shm, OpenBSD as files in /tmp.
    shm = {"netbsd": "/var/shm", "openbsd": "/tmp"}.get(src.os_name)
    return mounts, "mount", ([("shm", shm)] if shm else []) + [("tmp", "/tmp")]


class NoexecMounts(Detector):
    name = "noexec_mounts"
    title = "noexec mounts of the shared-memory and temporary directories"
    oses = ("linux", "freebsd", "netbsd", "openbsd", "dragonfly")
    order = 130

    def read(self, src: Source) -> dict:
        mounts, source, paths = _mounts(src)
        if not mounts:
            return unknown("no mounts could be parsed from %s" % source)
        paths.append(("tmpdir", _live_temp_dir() if src.own_env else temp_dir(src.env)))
        any_noexec, described = describe_paths(mounts, paths)
        return {"state": "on" if any_noexec else "off", "source": source, "paths": described}


DETECTOR = NoexecMounts


# --- attribution -----------------------------------------------------------------------


def status(mech: str, f: Facts, op: "Op | None") -> tuple:
    role = path_role(op)
    if role == "shm" and f.os == "freebsd":
        return INACTIVE, "FreeBSD's shm objects (SHM_ANON) live in no file system"
    if role == "memfd":
        return INACTIVE, "a memfd lives on the kernel's internal mount, never mounted noexec"
    paths = f.policy("noexec_mounts").get("paths") or {}
    entry = paths.get(role) if role else None
    if not entry or entry.get("noexec") is None:
        return UNSURE, "the mount of the %s directory is not known" % (role or "probe's")
    where = "%s is on %s (%s)" % (entry.get("path"), entry.get("mount_point"), entry.get("fstype"))
    if entry["noexec"]:
        return ACTIVE, "%s mounted noexec" % where
    return INACTIVE, "%s mounted without noexec" % where


def rules(obs: Observation, op: Op, f: Facts) -> list:
    out = []
    if obs.refused(op, "EACCES") and op.memory in ("shm", "file", "private_file") and \
            op.call == "mprotect" and op.gains_x:
        out.append((206, "noexec-mount", "%s of a file mapping refused with EACCES, as on a "
                                         "noexec mount" % obs.what))
    if obs.refused(op, "EPERM") and op.call == "mmap" and op.wants_x and op.memory in (
            "shm", "file", "private_file"):
        out.append((302, "noexec-mount", "%s refused with EPERM: PROT_EXEC mappings of files on a "
                                         "noexec mount are refused" % obs.what))
    return out
