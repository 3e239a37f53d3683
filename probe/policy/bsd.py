"""BSD detectors: FreeBSD W^X, HardenedBSD PaX, NetBSD PaX MPROTECT, OpenBSD W^X.

Written for real hosts (sysctlbyname/procctl through ctypes, `sysctl -n` as fallback);
on the Linux test machine they run against fixture trees.
"""

import os

from probe.policy import Detector, Unavailable, register, unknown
from probe.policy import parse as _parse
from probe.policy import markings as _markings


def _int_sysctl(src, name, reasons):
    """int value, None when the sysctl does not exist (reason appended)."""
    try:
        raw = src.sysctl(name)
    except Unavailable as exc:
        reasons.append(str(exc))
        return None
    if raw is None:
        return None
    value = _parse.to_int(raw)
    if value is None:
        reasons.append("sysctl %s = %r is not a number" % (name, raw))
    return value


def _interpreter(src):
    """(path, markings dict or None, note or None) of the running interpreter."""
    try:
        marks = _markings.elf_markings(_markings.parse_elf(src.exe_header()))
        return src.executable(), marks, None
    except Unavailable as exc:
        return src.executable(), None, str(exc)
    except _markings.ELFError as exc:
        return src.executable(), None, "cannot parse the interpreter's ELF headers: %s" % exc


PROC_WXMAP_STATUS = 22
P_PID = 0


def _live_procctl_wxmap():
    import ctypes
    from probe.platform import libc as _libc
    fn = _libc.symbol("procctl", ctypes.c_int,
                      [ctypes.c_int, ctypes.c_int64, ctypes.c_int, ctypes.c_void_p])
    if fn is None:
        raise Unavailable("this C library has no procctl()")
    value = ctypes.c_int(0)
    ctypes.set_errno(0)
    if fn(P_PID, os.getpid(), PROC_WXMAP_STATUS, ctypes.byref(value)) != 0:
        err = ctypes.get_errno()
        raise Unavailable("procctl(PROC_WXMAP_STATUS): %s (FreeBSD before 13?)" % os.strerror(err))
    return value.value & 0xFFFFFFFF


@register
class FreeBSDWX(Detector):
    name = "freebsd_wx"
    title = "FreeBSD W^X (kern.elf*.allow_wx)"
    oses = ("freebsd",)

    def read(self, src):
        reasons = []
        allow = {abi: _int_sysctl(src, "kern.%s.allow_wx" % abi, reasons) for abi in ("elf64", "elf32")}
        abi = "elf64" if src.pointer_bits() == 64 else "elf32"
        out = {"state": None, "allow_wx": allow, "abi": abi, "procctl": None}
        try:
            raw = _live_procctl_wxmap() if src.live else _parse.to_int(
                src.recorded("procctl PROC_WXMAP_STATUS"), 0)
            if raw is not None:
                out["procctl"] = _parse.decode_wxmap_status(raw)
        except Unavailable as exc:
            out["procctl_reason"] = str(exc)
        exe, marks, note = _interpreter(src)
        out["interpreter"] = exe
        out["interpreter_wxneeded"] = None if marks is None else (
            "wxneeded" in (marks["freebsd_features"] or {}).get("flags", ()))
        if note:
            out["interpreter_reason"] = note
        if out["procctl"] is not None:
            # The per-process answer already folds in elfctl marks and procctl exemptions.
            out["state"] = "enforcing" if out["procctl"]["wxorx_enforce"] else "off"
        elif allow[abi] is not None:
            out["state"] = "enforcing" if allow[abi] == 0 else "off"
        elif allow["elf64"] is None and allow["elf32"] is None and not reasons:
            out["state"] = "absent"
            out["reason"] = "no kern.elf64.allow_wx sysctl: FreeBSD before 13.0 has no W^X policy"
        else:
            out["state"] = "unknown"
            out["reason"] = "; ".join(reasons) or "kern.%s.allow_wx is missing" % abi
        return out


@register
class HardenedBSD(Detector):
    name = "hardenedbsd"
    title = "HardenedBSD PaX NOEXEC (PAGEEXEC, MPROTECT)"
    oses = ("freebsd",)

    def read(self, src):
        reasons = []
        out = {"state": None}
        statuses = []
        for feature in ("pageexec", "mprotect"):
            value = _int_sysctl(src, "hardening.pax.%s.status" % feature, reasons)
            out[feature] = None if value is None else {
                "status": value, "mode": _parse.HBSD_MODES.get(value, "unknown")}
            if value is not None:
                statuses.append(value)
        if not statuses:
            if reasons:
                return unknown("; ".join(reasons), pageexec=None, mprotect=None)
            out["state"] = "absent"
            out["reason"] = "no hardening.pax.* sysctls: FreeBSD, not HardenedBSD"
            return out
        top = max(statuses)
        out["state"] = "on" if top >= 2 else ("opt_in" if top == 1 else "off")
        out["note"] = ("per-program exemptions (hbsdcontrol, secadm) are not read; "
                       "opt-out means on unless the program is exempted")
        return out


@register
class NetBSDPaX(Detector):
    name = "netbsd_pax"
    title = "NetBSD PaX MPROTECT"
    oses = ("netbsd",)

    def read(self, src):
        reasons = []
        enabled = _int_sysctl(src, "security.pax.mprotect.enabled", reasons)
        global_ = _int_sysctl(src, "security.pax.mprotect.global", reasons)
        out = {"state": None, "enabled": enabled, "global": global_}
        segv = _int_sysctl(src, "security.pax.segvguard.enabled", [])
        if segv is not None:
            out["segvguard"] = segv
        if enabled is None:
            if reasons:
                return unknown("; ".join(reasons), enabled=None, **{"global": global_})
            out["state"] = "absent"
            out["reason"] = "no security.pax.mprotect sysctls: the kernel has no PAX_MPROTECT"
            return out
        if not enabled:
            out["state"] = "off"
        else:
            out["state"] = "on" if global_ else "opt_in"
        exe, marks, note = _interpreter(src)
        out["interpreter"] = exe
        mark = None if marks is None or marks["netbsd_pax"] is None else \
            marks["netbsd_pax"]["flags"].get("mprotect")
        # as paxctl(8) names them: +M forces MPROTECT on, +m exempts the program
        out["interpreter_marking"] = None if mark is None else ("+M" if mark else "+m")
        if note:
            out["interpreter_reason"] = note
        # pax_mprotect_elf_flags_active(): global means "unless marked -m" (paxctl +m
        # sets NOMPROTECT); opt-in means "only if marked to enable".
        if marks is not None and enabled is not None and global_ is not None:
            out["effective_for_interpreter"] = bool(enabled) and (
                (bool(global_) and mark is not False) or (not global_ and mark is True))
        return out


@register
class OpenBSDWX(Detector):
    name = "openbsd_wx"
    title = "OpenBSD W^X"
    oses = ("openbsd",)

    def read(self, src):
        reasons = []
        wxabort = _int_sysctl(src, "kern.wxabort", reasons)
        out = {"state": "enforcing", "wxabort": wxabort, "wxallowed_mounts": None}
        try:
            mounts = _parse.parse_bsd_mount(src.mount_listing())
            out["wxallowed_mounts"] = [m["mount_point"] for m in mounts if "wxallowed" in m["options"]]
        except Unavailable as exc:
            mounts = None
            reasons.append(str(exc))
        exe, marks, note = _interpreter(src)
        out["interpreter"] = exe
        out["interpreter_wxneeded"] = None if marks is None else marks["openbsd_wxneeded"]
        if note:
            reasons.append(note)
        if mounts is not None and exe and exe.startswith("/"):
            m = _parse.mount_for(mounts, exe)
            out["interpreter_on_wxallowed"] = None if m is None else "wxallowed" in m["options"]
            if out["interpreter_wxneeded"] and out["interpreter_on_wxallowed"]:
                out["state"] = "off"
                out["reason"] = ("the interpreter is marked wxneeded and runs from a wxallowed "
                                 "mount, so W|X mappings are allowed for it")
        if reasons:
            out["notes"] = reasons
        return out
