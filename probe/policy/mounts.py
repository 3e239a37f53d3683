"""The noexec-mount detector, shared by Linux (mountinfo) and the BSDs (`mount`)."""

import os

from probe.policy import Detector, register, unknown
from probe.policy import parse as _parse


def temp_dir(env):
    """The directory Python's tempfile (so the dual_map_file and patch_file_text probes)
    uses: $TMPDIR, $TEMP, $TMP, then /tmp."""
    for name in ("TMPDIR", "TEMP", "TMP"):
        if env.get(name):
            return env[name]
    return "/tmp"


def _live_temp_dir():
    import tempfile
    try:
        return tempfile.gettempdir()
    except (OSError, IOError):
        return temp_dir(os.environ)


def describe_paths(mounts, paths):
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


@register
class NoexecMounts(Detector):
    name = "noexec_mounts"
    title = "noexec mounts of the shared-memory and temporary directories"
    oses = ("linux", "freebsd", "netbsd", "openbsd", "dragonfly")

    def read(self, src):
        if src.os_name == "linux":
            mounts = _parse.parse_mountinfo(src.read_text("/proc/self/mountinfo"))
            source = "/proc/self/mountinfo"
            paths = [("shm", "/dev/shm"), ("tmp", "/tmp")]
        else:
            mounts = _parse.parse_bsd_mount(src.mount_listing())
            source = "mount"
            # Where shm_open() puts its objects: FreeBSD keeps them in the kernel
            # (SHM_ANON), NetBSD in /var/shm, OpenBSD as files in /tmp.
            shm = {"netbsd": "/var/shm", "openbsd": "/tmp"}.get(src.os_name)
            paths = ([("shm", shm)] if shm else []) + [("tmp", "/tmp")]
        if not mounts:
            return unknown("no mounts could be parsed from %s" % source)
        paths.append(("tmpdir", _live_temp_dir() if src.own_env else temp_dir(src.env)))
        any_noexec, described = describe_paths(mounts, paths)
        return {"state": "on" if any_noexec else "off", "source": source, "paths": described}


