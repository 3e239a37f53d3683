"""Pure parsers for the policy sources: text or bytes in, plain values out.

Nothing here touches the host; the readers in linux.py/bsd.py feed these the contents of
files (or fixture copies of them). Every parser tolerates junk and missing fields: it
returns None (or leaves a key out) rather than raising on a malformed line.
"""

import re


def to_int(value: object, base: int = 10) -> "int | None":
    try:
        return int(str(value).strip(), base)
    except (TypeError, ValueError):
        return None


# --- getfattr dump / environ / calls ------------------------------------------------


def parse_getfattr(text: str) -> dict:
    """`getfattr -d -m - FILE...` output -> {path: {name: value}} (values unquoted)."""
    out = {}
    current = None
    for line in text.splitlines():
        line = line.rstrip("\n")
        if line.startswith("# file: "):
            current = out.setdefault(line[8:].strip(), {})
        elif "=" in line and current is not None and not line.startswith("#"):
            name, _, value = line.partition("=")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            current[name.strip()] = value
    return out


def parse_environ(data: bytes) -> dict:
    """/proc/<pid>/environ (NUL-separated) -> dict."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    out = {}
    for item in data.split("\0"):
        key, sep, value = item.partition("=")
        if sep and key:
            out[key] = value
    return out


def parse_kv(text: str) -> dict:
    """`name: value`, `name = value` and `name=value` lines (sysctl -a on FreeBSD, NetBSD,
    OpenBSD; memprobe's calls.txt) -> {name: value}. Comments and junk are skipped; a
    multi-line value keeps only its first line."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([A-Za-z0-9_.%\- ]+?)\s*(?::\s|=|:$)\s*(.*)$", line)
        if m and m.group(1) not in out:
            out[m.group(1).strip()] = m.group(2).strip()
    return out


# --- SELinux -----------------------------------------------------------------------


def parse_selinux_bool(text: str) -> "tuple | None":
    """A selinuxfs boolean file: 'cur pending' -> (cur, pending) as bools, or None."""
    parts = text.split()
    if len(parts) != 2 or any(p not in ("0", "1") for p in parts):
        return None
    return parts[0] == "1", parts[1] == "1"


def parse_context(data: "bytes | str") -> "str | None":
    """/proc/<pid>/attr/current (NUL-terminated) -> the context string, or None."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    value = data.split("\0", 1)[0].strip()
    return value or None


# --- mounts ------------------------------------------------------------------------

_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape(field):
    # mountinfo escapes space, tab, newline and backslash as \ooo
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list:
    """/proc/<pid>/mountinfo -> [{'mount_point', 'fstype', 'source', 'options',
    'super_options'}] in file order (later entries are stacked over earlier ones)."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        try:
            sep = fields.index("-", 6)
        except ValueError:
            continue
        if len(fields) < sep + 3:
            continue
        mounts.append({
            "mount_point": _unescape(fields[4]),
            "options": fields[5].split(","),
            "fstype": fields[sep + 1],
            "source": _unescape(fields[sep + 2]),
            "super_options": fields[sep + 3].split(",") if len(fields) > sep + 3 else [],
        })
    return mounts


_BSD_MOUNT = re.compile(r"^(?P<source>.+?) on (?P<point>/.*?)(?: type (?P<type>\S+))? \((?P<opts>[^()]*)\)\s*$")


def parse_bsd_mount(text: str) -> list:
    """`mount` output of the BSDs -> the same shape as parse_mountinfo.

    FreeBSD/DragonFly: 'tmpfs on /tmp (tmpfs, local, noexec)';
    NetBSD/OpenBSD:    '/dev/sd0f on /usr/local type ffs (local, nodev, wxallowed)'.
    """
    mounts = []
    for line in text.splitlines():
        m = _BSD_MOUNT.match(line.strip())
        if not m:
            continue
        opts = [o.strip() for o in m.group("opts").split(",") if o.strip()]
        fstype = m.group("type")
        if fstype is None and opts:
            fstype, opts = opts[0], opts[1:]
        mounts.append({"mount_point": m.group("point"), "options": opts, "fstype": fstype,
                       "source": m.group("source"), "super_options": []})
    return mounts


def mount_for(mounts: list, path: str) -> "dict | None":
    """The mount holding `path`: the longest mount point that prefixes it, the last one
    listed when several are stacked on the same point. None when nothing matches."""
    path = "/" + path.strip("/") if path != "/" else "/"
    best = None
    for m in mounts:
        point = m["mount_point"].rstrip("/") or "/"
        if point == "/" or path == point or path.startswith(point + "/"):
            if best is None or len(point) >= len(best["mount_point"].rstrip("/") or "/"):
                best = m
    return best


def is_noexec(mount: dict) -> bool:
    return "noexec" in mount["options"] or "noexec" in mount.get("super_options", ())


# --- misc Linux ----------------------------------------------------------------------


def parse_cpuinfo_nx(text: str) -> "bool | None":
    """True/False from the first `flags` line of /proc/cpuinfo (x86); None when the CPU
    lists no flags line (other architectures)."""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "flags":
            return "nx" in value.split()
    return None


CONFIG_KEYS = ("CONFIG_PAX", "CONFIG_PAX_NOEXEC", "CONFIG_PAX_PAGEEXEC", "CONFIG_PAX_SEGMEXEC",
               "CONFIG_PAX_MPROTECT", "CONFIG_PAX_MPROTECT_COMPAT", "CONFIG_PAX_EMUTRAMP",
               "CONFIG_PAX_SOFTMODE", "CONFIG_PAX_PT_PAX_FLAGS", "CONFIG_PAX_XATTR_PAX_FLAGS",
               "CONFIG_PAX_EI_PAX", "CONFIG_GRKERNSEC", "CONFIG_SECURITY_SELINUX",
               "CONFIG_SECCOMP_FILTER")
_CONFIG_LINE = re.compile(r"^(?:(CONFIG_(?:PAX|GRKERNSEC|SECURITY_SELINUX|SECCOMP)\w*)=(.*)"
                          r"|# (CONFIG_(?:PAX|GRKERNSEC|SECURITY_SELINUX|SECCOMP)\w*) is not set)$",
                          re.M)


def parse_kernel_config(text: str) -> dict:
    """A kernel .config -> {option: value or None} for CONFIG_KEYS (None: not set), plus
    every other CONFIG_PAX_* that is set."""
    found = {}
    for m in _CONFIG_LINE.finditer(text):
        if m.group(1):
            found[m.group(1)] = m.group(2).strip('"')
        else:
            found[m.group(3)] = None
    out = {key: found.get(key) for key in CONFIG_KEYS}
    for key in sorted(found):
        if key.startswith("CONFIG_PAX_") and key not in out and found[key] is not None:
            out[key] = found[key]
    return out


def parse_personality(text: str) -> "int | None":
    return to_int(text.strip(), 16) if text and text.strip() else None


# --- BSD -------------------------------------------------------------------------------

HBSD_MODES = {0: "off", 1: "opt-in", 2: "opt-out", 3: "forced"}

PROC_WX_MAPPINGS_PERMIT = 0x1
PROC_WX_MAPPINGS_DISALLOW_EXEC = 0x2
PROC_WXORX_ENFORCE = 0x80000000


def decode_wxmap_status(value: int) -> dict:
    return {"value": "0x%08x" % value,
            "permit": bool(value & PROC_WX_MAPPINGS_PERMIT),
            "disallow_exec": bool(value & PROC_WX_MAPPINGS_DISALLOW_EXEC),
            "wxorx_enforce": bool(value & PROC_WXORX_ENFORCE)}


def uname_os(text: str) -> "str | None":
    """First word of `uname -s`/`uname -srm` output -> memprobe's OS name."""
    word = text.split()[0].lower() if text.split() else ""
    return {"linux": "linux", "freebsd": "freebsd", "netbsd": "netbsd", "openbsd": "openbsd",
            "dragonfly": "dragonfly", "darwin": "macos"}.get(word, word or None)
