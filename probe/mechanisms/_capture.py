"""Capture this host's policy sources into a fixture tree (`memprobe capture-fixture`).

The tree holds the files the detectors read (under the same paths) plus sysctl.txt,
mount.txt and calls.txt for what only a command or system call gives, and an
expected.yaml with what detect() reports from the tree. Contributors send such a
tree so memprobe's tests cover their kind of host. Review it before sharing: it holds
mount points and the interpreter's path, never the hostname or environment beyond the
temporary-directory variables.
"""

import datetime
import os

from probe.policy import Source, Unavailable
from probe.policy import markings as _markings

LINUX_FILES = ("/proc/self/status", "/proc/self/mountinfo", "/proc/self/personality",
               "/proc/sys/vm/memfd_noexec", "/proc/sys/kernel/pax/softmode",
               "/proc/sys/kernel/osrelease")
BSD_SYSCTLS = {
    "freebsd": ("kern.elf64.allow_wx", "kern.elf32.allow_wx", "hardening.pax.pageexec.status",
                "hardening.pax.mprotect.status"),
    "netbsd": ("security.pax.mprotect.enabled", "security.pax.mprotect.global",
               "security.pax.segvguard.enabled"),
    "openbsd": ("kern.wxabort",),
}
ENV_KEYS = ("TMPDIR", "TEMP", "TMP")


def capture(target: str, description: str = "", src: "Source | None" = None) -> list:
    """Write the fixture tree; [differences between live and fixture detect()]."""
    src = src or Source()
    os.makedirs(target, exist_ok=True)
    w = _Writer(target)
    calls = ["# values memprobe reads through system calls, captured %s" % _now(),
             "executable: %s" % (src.executable() or "")]
    if src.os_name == "linux":
        _capture_linux(src, w, calls)
    else:
        _capture_bsd(src, w, calls)
    try:
        data = src.exe_header()
        size = _markings.elf_header_size(data)
        if size:
            w.write_bytes("/proc/self/exe", data[:size])
    except Unavailable:
        pass
    env = "".join("%s=%s\0" % (k, src.env[k]) for k in ENV_KEYS if src.env.get(k))
    w.write_bytes("/proc/self/environ", env.encode())
    u = os.uname()
    w.write_text("/uname.txt", "%s %s %s\n" % (u.sysname, u.release, u.machine))
    w.write_text("/calls.txt", "\n".join(calls) + "\n")

    from probe.mechanisms import detect
    live = detect()
    from_tree = detect(root=target)
    import yaml
    doc = {"description": description or "captured from %s %s" % (u.sysname, u.release),
           "os": src.os_name, "detectors": from_tree}
    header = ("# Captured by `memprobe capture-fixture` on %s. detectors: what detect() reports\n"
              "# from this tree. Review before sharing: mount points and paths are host data.\n" % _now())
    w.write_text("/expected.yaml", header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))
    return _diff(live, from_tree)


def _capture_linux(src, w, calls):
    for path in LINUX_FILES:
        w.copy(src, path)
    _capture_first_cpu(src, w)
    _capture_selinux(src, w)
    _capture_grsecurity_markers(src, w)
    _capture_config(src, w)
    _capture_calls(src, calls)


def _capture_first_cpu(src, w):
    try:   # the first CPU's block is enough for the flags line
        text = src.read_text("/proc/cpuinfo", 65536)
        w.write_text("/proc/cpuinfo", text.split("\n\n", 1)[0] + "\n")
    except Unavailable:
        pass


def _capture_selinux(src, w):
    for mount in ("/sys/fs/selinux", "/selinux"):
        if w.copy(src, mount + "/enforce"):
            for name in _selinux_booleans():
                w.copy(src, "%s/booleans/%s" % (mount, name))
            w.copy(src, "/proc/self/attr/current")
            break


def _capture_grsecurity_markers(src, w):
    for marker in ("/proc/sys/kernel/grsecurity", "/dev/grsec"):
        if src.exists(marker):
            # git keeps no empty directories: a placeholder file makes the path exist
            if os.path.isdir(src.path(marker)):
                w.write_text(marker + "/.exists", "")
            else:
                w.write_text(marker, "")


def _capture_calls(src, calls):
    """Values only a system call gives, as lines for calls.txt."""
    try:
        calls.append("prctl PR_GET_MDWE: %s" % src.call("prctl PR_GET_MDWE"))
    except Unavailable:
        pass
    try:
        value = src.pax_xattr()
        calls.append("getxattr user.pax.flags: %s" % ("ENODATA" if value is None else value))
    except Unavailable:
        pass


def _selinux_booleans():
    from probe.mechanisms.selinux import SELINUX_BOOLEANS
    return SELINUX_BOOLEANS


def _capture_config(src, w):
    """Only the lines the detectors read: a full config is large and says nothing more."""
    import gzip
    import re
    keep = re.compile(r"^(# )?CONFIG_(PAX|GRKERNSEC|SECURITY_SELINUX|SECCOMP)\w*[= ]")
    try:
        text = gzip.decompress(src.read_bytes("/proc/config.gz")).decode("utf-8", "replace")
        lines = [line for line in text.splitlines() if keep.match(line)]
        w.write_bytes("/proc/config.gz", gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
        return
    except (Unavailable, OSError, EOFError):
        pass
    release = src.kernel_release()
    if release:
        try:
            text = src.read_text("/boot/config-%s" % release)
        except Unavailable:
            return
        lines = [line for line in text.splitlines() if keep.match(line)]
        w.write_text("/boot/config-%s" % release, "\n".join(lines) + "\n")


def _capture_bsd(src, w, calls):
    lines = []
    for name in BSD_SYSCTLS.get(src.os_name, ()):
        try:
            value = src.sysctl(name)
        except Unavailable:
            continue
        if value is not None:
            lines.append("%s: %s" % (name, value))
    w.write_text("/sysctl.txt", "\n".join(lines) + "\n")
    try:
        w.write_text("/mount.txt", src.mount_listing())
    except Unavailable:
        pass
    if src.os_name == "freebsd":
        try:
            calls.append("procctl PROC_WXMAP_STATUS: %s" % src.call("procctl PROC_WXMAP_STATUS"))
        except Unavailable:
            pass


class _Writer:
    def __init__(self, root):
        self.root = root

    def _path(self, logical):
        path = os.path.join(self.root, logical.lstrip("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def write_bytes(self, logical: str, data: bytes) -> None:
        with open(self._path(logical), "wb") as f:
            f.write(data)

    def write_text(self, logical: str, text: str) -> None:
        self.write_bytes(logical, text.encode("utf-8"))

    def copy(self, src: Source, logical: str) -> bool:
        try:
            data = src.read_bytes(logical)
        except Unavailable:
            return False
        self.write_bytes(logical, data)
        return True


def _diff(live, tree, path=""):
    out = []
    for key in sorted(set(live) | set(tree)):
        a, b = live.get(key, "<missing>"), tree.get(key, "<missing>")
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(_diff(a, b, "%s%s." % (path, key)))
        elif a != b:
            out.append("%s%s: live %r, fixture %r" % (path, key, a, b))
    return out


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
