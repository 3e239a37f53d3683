"""Redact a report for a public bug tracker (`memprobe run --redact`, `memprobe redact`).

What goes, what stays (the README says the same to users):
- host.hostname becomes `host-` + 12 hex digits of HMAC-SHA256 keyed with a secret of this
  machine (the systemd machine id, else a random per-user key file). The same host gives
  the same pseudonym; without the key, trying every short host name gets nowhere, which a
  plain hash of the name would not survive.
- In every string of the report, path components: the home directory becomes `~`, another
  user's home `~<user>`, the name after /home/ (/Users/, /usr/home/, /var/home/) `<user>`, a
  component equal to a user name `<user>`, one equal to the host name the pseudonym.
  System trees (/proc, /sys, /dev, /etc, /usr) keep their names: there `vm` is
  /proc/sys/vm, not a host.
- Mount points outside the standard ones are trimmed to their first standard component
  (`/srv/ci-acme` -> `/srv/...`), and so is every path under them; a mount's fstype and
  noexec flag, which the verdicts depend on, stay.
- uid, euid, gid: 0 stays (root changes what memprobe can read); any other id becomes
  null, meaning "not root".
Kernel release and build string, distribution, CPU, libc, Python, policies and every
verdict stay: they are what a bug report needs.
"""

import copy
import hashlib
import hmac
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

from probe.errors import InputError

PSEUDONYM_PREFIX = "host-"
KEY_FILE_ENV = "MEMPROBE_REDACT_KEY_FILE"
MACHINE_ID_PATHS = ("/etc/machine-id", "/var/lib/dbus/machine-id", "/var/db/dbus/machine-id",
                    "/etc/hostid")
# Domain separation: the key is the machine id, which other programs hash too.
_CONTEXT = b"memprobe hostname pseudonym v1\0"
USER = "<user>"
TRIMMED = "..."

HOME_ROOTS = ("/home", "/Users", "/usr/home", "/var/home")
SYSTEM_TREES = ("/proc", "/sys", "/dev", "/etc", "/usr")
STANDARD_MOUNTS = frozenset((
    "/", "/boot", "/boot/efi", "/dev", "/dev/shm", "/home", "/media", "/mnt", "/nix", "/nix/store",
    "/opt", "/proc", "/root", "/run", "/run/lock", "/run/shm", "/snap", "/srv", "/sys", "/tmp",
    "/usr", "/usr/home", "/usr/local", "/var", "/var/home", "/var/lib", "/var/log", "/var/shm",
    "/var/tmp"))
# Fields whose value is one path (free text elsewhere is searched for path tokens).
_PATH_FIELDS = frozenset(("interpreter", "tmpdir", "path", "mount_point", "unmarked_copy_of"))
# Account names that are also ordinary path words (/root is no secret either).
_NOT_PRIVATE_NAMES = frozenset(("root", "bin", "boot", "dev", "etc", "home", "lib", "lib64", "local",
                                "media", "mnt", "opt", "proc", "run", "sbin", "share", "shm", "srv",
                                "sys", "tmp", "usr", "var"))
# A path in free text: starts with / or ~ after a non-path character, runs to a delimiter.
_PATH_TOKEN = re.compile(r"(?<![\w.~/-])(?:/|~(?=/|$|[^\w]))[^\s'\"`,;()<>\[\]{}|]*")


# --------------------------------------------------------------------------- the key

def _read_machine_id(paths: Sequence[str]) -> Optional[bytes]:
    for path in paths:
        try:
            with open(path, "rb") as f:
                value = f.read(256).strip()
        except OSError:
            continue
        # systemd writes "uninitialized" during first boot; an empty file is a template.
        if len(value) >= 8 and value != b"uninitialized":
            return value
    return None


def _user_key_file() -> str:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "memprobe", "redact.key")


def _read_or_make_key_file(path: str, create: bool) -> bytes:
    try:
        with open(path, "rb") as f:
            key = f.read(4096).strip()
    except FileNotFoundError:
        if not create:
            raise InputError("%s: key file not found" % path) from None
        return _make_key_file(path)
    except OSError as exc:
        raise InputError("%s: cannot read the redaction key: %s" % (path, exc.strerror)) from None
    if len(key) < 16:
        raise InputError("%s: a redaction key needs at least 16 bytes" % path)
    return key


def _make_key_file(path: str) -> bytes:
    key = os.urandom(32).hex().encode("ascii")
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:        # another run made it first: use theirs
        return _read_or_make_key_file(path, create=False)
    except OSError as exc:
        raise InputError("%s: cannot create the redaction key: %s" % (path, exc.strerror)) from None
    with os.fdopen(fd, "wb") as f:
        f.write(key + b"\n")
    return key


def host_key(machine_id_paths: Sequence[str] = MACHINE_ID_PATHS,
             key_file: Optional[str] = None) -> Tuple[bytes, str]:
    """(secret, where it came from: 'key-file' or 'machine-id') that keys the pseudonym.

    MEMPROBE_REDACT_KEY_FILE names a key to share between hosts; else the machine id;
    else a random key kept in ~/.config/memprobe/redact.key, made on first use.
    """
    chosen = os.environ.get(KEY_FILE_ENV)
    if chosen:
        return _read_or_make_key_file(chosen, create=False), "key-file"
    machine_id = _read_machine_id(machine_id_paths)
    if machine_id is not None:
        return machine_id, "machine-id"
    return _read_or_make_key_file(key_file or _user_key_file(), create=True), "key-file"


def pseudonym(hostname: str, key: bytes) -> str:
    """host-<12 hex digits>: stable for (host, key), not reversible without the key."""
    message = _CONTEXT + hostname.strip().lower().encode("utf-8", "surrogateescape")
    return PSEUDONYM_PREFIX + hmac.new(key, message, hashlib.sha256).hexdigest()[:12]


# --------------------------------------------------------------------------- who lives here

def local_people() -> Tuple[List[str], Dict[str, str]]:
    """(user names to hide, {home directory: replacement}) from this machine's accounts."""
    import pwd
    own = _own_accounts(pwd)
    names = {os.environ.get(var) for var in ("SUDO_USER", "USER", "LOGNAME")} - {None, ""}
    homes = {}
    for entry in _all_accounts(pwd) + list(own):
        if entry in own or 1000 <= entry.pw_uid < 65534:   # people, not system accounts
            names.add(entry.pw_name)
            _add_home(homes, entry.pw_dir, "~" if entry in own else "~" + USER)
    _add_home(homes, os.environ.get("HOME"), "~")
    return sorted(names), homes


def _all_accounts(pwd) -> list:
    try:
        return list(pwd.getpwall())
    except OSError:
        return []


def _add_home(homes: Dict[str, str], path: Optional[str], replacement: str) -> None:
    """Record `path` as a home to hide when it is a private one."""
    if path and _is_private_home(path):
        homes[path.rstrip("/")] = replacement


def _own_accounts(pwd):
    """The password entries of this process's real and effective uids."""
    own = set()
    for uid in {os.getuid(), os.geteuid()}:
        try:
            own.add(pwd.getpwuid(uid))
        except KeyError:
            pass
    return own


def _is_private_home(path: str) -> bool:
    path = path.rstrip("/")
    return path.startswith("/") and path not in STANDARD_MOUNTS and path not in (
        "", "/nonexistent", "/var/empty", "/dev/null", "/bin", "/sbin", "/usr/sbin")


# --------------------------------------------------------------------------- paths

class PathRules:
    """Rewrites path tokens: homes, user and host names, then non-standard mount points."""

    def __init__(self, users: Sequence[str], homes: Dict[str, str], hostname: Optional[str],
                 host_pseudonym: Optional[str]):
        self.users = {u.lower() for u in users if u} - _NOT_PRIVATE_NAMES
        self.homes = sorted(homes.items(), key=lambda kv: -len(kv[0]))
        self.hostname = (hostname or "").lower() or None
        self.host_pseudonym = host_pseudonym
        self.mounts: List[Tuple[str, str]] = []

    def set_mounts(self, mount_points: Sequence[str]) -> None:
        """Mount points as the report has them; the non-standard ones will be trimmed."""
        trimmed = {}
        for point in mount_points:
            point = self.people(point).rstrip("/") or "/"
            if point.startswith("/") and point not in STANDARD_MOUNTS:
                trimmed[point] = _trim(point)
        self.mounts = sorted(trimmed.items(), key=lambda kv: -len(kv[0]))

    def people(self, path: str) -> str:
        for home, replacement in self.homes:
            if _under(path, home):
                return replacement + path[len(home):]
        parts = _hide_home_owner(path)
        if not any(_under(path, tree) for tree in SYSTEM_TREES):
            parts = [self._component(p) for p in parts]
        return "/".join(parts)

    def _component(self, part: str) -> str:
        lowered = part.lower()
        if lowered in self.users:
            return USER
        if self.hostname and (lowered == self.hostname or lowered.startswith(self.hostname + ".")):
            return self.host_pseudonym or part
        return part

    def path(self, path: str) -> str:
        path = self.people(path)
        for point, trimmed in self.mounts:
            if path == point or path.startswith(point + "/"):
                return trimmed
        return path

    def text(self, value: str) -> str:
        """Every path token of a string rewritten; the words around them untouched."""
        return _PATH_TOKEN.sub(lambda m: self._token(m.group(0)), value)

    def _token(self, token: str) -> str:
        tail = ""
        while len(token) > 1 and token[-1] in ".:":     # sentence punctuation after a path
            token, tail = token[:-1], token[-1] + tail
        return self.path(token) + tail


def _under(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree + "/")


def _hide_home_owner(path: str) -> List[str]:
    """The components of `path`, the one naming a user under a home root replaced."""
    parts = path.split("/")
    for root in HOME_ROOTS:
        depth = root.count("/")
        if path.startswith(root + "/") and len(parts) > depth + 1 and parts[depth + 1]:
            parts[depth + 1] = USER
            break
    return parts


def _trim(point: str) -> str:
    first = "/" + point.split("/")[1]
    if first != "/" and first in STANDARD_MOUNTS:
        return first + "/" + TRIMMED
    return "/" + TRIMMED


# --------------------------------------------------------------------------- the report

def redact_report(report: dict, key: Optional[Tuple[bytes, str]] = None,
                  people: Optional[Tuple[Sequence[str], Dict[str, str]]] = None) -> dict:
    """A redacted copy of `report`; one already redacted comes back unchanged."""
    if report.get("redacted"):
        return copy.deepcopy(report)
    secret, source = key or host_key()
    users, homes = people or local_people()
    hostname = _hostname(report)
    host_pseudonym = pseudonym(hostname or "", secret)
    rules = PathRules(users, homes, hostname, host_pseudonym)
    rules.set_mounts(list(_mount_points(report)))
    redacted = _rewrite(report, rules)
    if isinstance(redacted.get("host"), dict):
        redacted["host"]["hostname"] = host_pseudonym
    _hide_ids(redacted.get("process"))
    note = {"hostname_key": source, "changed": _changed(report, redacted)}
    return _insert_after(redacted, "generated_at", "redacted", note)


def _hostname(report: dict) -> Optional[str]:
    host = report.get("host") or {}
    return host.get("hostname") if isinstance(host.get("hostname"), str) else None


def _hide_ids(process) -> None:
    """Blank the process's non-root uid, euid and gid (root stays: it says something)."""
    if not isinstance(process, dict):
        return
    for key_name in ("uid", "euid", "gid"):
        if key_name in process and process[key_name] != 0:
            process[key_name] = None


def _mount_points(value):
    """Every mount point named in the report (mount_point fields, *_mounts lists)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _mount_points_in_field(key, item)
    elif isinstance(value, list):
        for item in value:
            yield from _mount_points(item)


def _mount_points_in_field(key, item):
    if key == "mount_point" and isinstance(item, str):
        yield item
    elif str(key).endswith("_mounts") and isinstance(item, list):
        yield from (m for m in item if isinstance(m, str))
    else:
        yield from _mount_points(item)


def _rewrite(value, rules: PathRules, key=None):
    if isinstance(value, dict):
        return {name: _rewrite(item, rules, name) for name, item in value.items()}
    if isinstance(value, list):
        return [_rewrite(item, rules) for item in value]
    if isinstance(value, str):
        if key in _PATH_FIELDS and value.startswith("/"):
            return rules.path(value)      # the whole value, spaces included, is one path
        return rules.text(value)
    return value


def _changed(before, after, where="") -> List[str]:
    """Dotted paths of the values that differ (the keys are the same on both sides)."""
    if isinstance(before, dict) and isinstance(after, dict):
        return _changed_in_dict(before, after, where)
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return _changed_in_list(before, after, where)
    return [] if before == after and type(before) is type(after) else [where]


def _changed_in_dict(before: dict, after: dict, where: str) -> List[str]:
    out = []
    for key in before:
        out += _changed(before[key], after.get(key), "%s.%s" % (where, key) if where else str(key))
    return out


def _changed_in_list(before: list, after: list, where: str) -> List[str]:
    out = []
    for index, (old, new) in enumerate(zip(before, after)):
        out += _changed(old, new, "%s[%d]" % (where, index))
    return out


def _insert_after(mapping: dict, anchor: str, key: str, value) -> dict:
    out = {}
    for name, item in mapping.items():
        out[name] = item
        if name == anchor:
            out[key] = value
    if key not in out:
        out[key] = value
    return out
