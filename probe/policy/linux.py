"""Linux detectors: NX, PaX/grsecurity, SELinux, seccomp, MDWE, personality,
vm.memfd_noexec, noexec mounts, kernel config."""

import os

from probe.policy import Detector, Unavailable, register, unknown
from probe.policy import parse as _parse
from probe.policy import markings as _markings

LINUX = ("linux",)


@register
class CpuNX(Detector):
    name = "cpu_nx"
    title = "CPU NX flag"
    oses = LINUX

    def read(self, src):
        # The first CPU's block holds the flags line; no need to read every CPU.
        text = src.read_text("/proc/cpuinfo", 65536)
        nx = _parse.parse_cpuinfo_nx(text)
        if nx is None:
            return unknown("/proc/cpuinfo lists no CPU flags on this architecture (x86 only); "
                           "the exec_rw probe shows whether NX is enforced", source="/proc/cpuinfo")
        return {"state": "on" if nx else "off", "source": "/proc/cpuinfo flags"}


# --- PaX -----------------------------------------------------------------------------


def kernel_config(src):
    """The kernel config options that matter, cached on the source; (dict, source) or
    raises Unavailable."""
    if "kconfig" not in src._cache:
        src._cache["kconfig"] = _read_kernel_config(src)
    value = src._cache["kconfig"]
    if isinstance(value, Unavailable):
        raise value
    return value


def _read_kernel_config(src):
    reasons = []
    try:
        import zlib
        data = src.read_bytes("/proc/config.gz")
        text = zlib.decompress(data, 16 + zlib.MAX_WBITS).decode("utf-8", "replace")
        return _parse.parse_kernel_config(text), "/proc/config.gz"
    except Unavailable as exc:
        reasons.append(str(exc))
    except Exception as exc:  # noqa: BLE001 - a corrupt config.gz is just unreadable
        reasons.append("/proc/config.gz is not a gzip file: %s" % exc)
    release = src.kernel_release()
    if release:
        path = "/boot/config-%s" % release
        try:
            return _parse.parse_kernel_config(src.read_text(path)), path
        except Unavailable as exc:
            reasons.append(str(exc))
    return Unavailable("; ".join(reasons))


def interpreter_markings(src, path=None):
    """PaX markings of the interpreter binary: {'interpreter', 'xattr', 'pt_pax_flags',
    'source', 'flags', 'exempt', 'forced', 'notes': [...]}."""
    exe = path or src.executable()
    out = {"interpreter": exe, "xattr": None, "pt_pax_flags": None, "source": None,
           "flags": {}, "exempt": [], "forced": [], "notes": []}
    # xattr user.pax.flags: takes precedence over PT_PAX_FLAGS (CONFIG_PAX_XATTR_PAX_FLAGS).
    xattr = None
    try:
        raw = _read_xattr(src, path)
        if raw is not None:
            xattr = _markings.parse_pax_xattr(raw)
            out["xattr"] = xattr["raw"]
            if not xattr["valid"]:
                out["notes"].append("user.pax.flags=%r is not a valid marking; the kernel "
                                    "ignores it" % xattr["raw"])
    except Unavailable as exc:
        out["notes"].append(str(exc))
    # PT_PAX_FLAGS program header (paxctl).
    pt = None
    try:
        data = _read_exe_header(src, path)
        pt = _markings.elf_markings(_markings.parse_elf(data))["pt_pax_flags"]
        out["pt_pax_flags"] = pt
    except Unavailable as exc:
        out["notes"].append(str(exc))
    except _markings.ELFError as exc:
        out["notes"].append("cannot parse the interpreter's ELF headers: %s" % exc)
    if xattr is not None and xattr["valid"] and xattr["flags"]:
        out["source"], flags = "xattr", xattr["flags"]
    elif pt is not None and pt["flags"]:
        out["source"], flags = "pt_pax_flags", pt["flags"]
    else:
        flags = {}
    out["flags"] = flags
    out["exempt"] = sorted(name for name, on in flags.items() if not on)
    out["forced"] = sorted(name for name, on in flags.items() if on)
    return out


def _read_xattr(src, path):
    if not src.live and path is None:
        value = src.recorded("getxattr user.pax.flags")
        return None if value in ("", "ENODATA", "-") else value
    target = path or "/proc/self/exe"
    try:
        return os.getxattr(target, "user.pax.flags").decode("ascii", "replace")
    except AttributeError:
        raise Unavailable("this Python cannot read extended attributes")
    except OSError as exc:
        import errno
        if exc.errno in (errno.ENODATA, getattr(errno, "ENOATTR", errno.ENODATA)):
            return None
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return None   # a file system without user xattrs cannot carry the marking
        raise Unavailable("cannot read user.pax.flags of %s: %s" % (target, exc.strerror))


def _read_exe_header(src, path):
    if path is not None:
        try:
            with open(path, "rb") as f:
                return f.read(65536)
        except OSError as exc:
            raise Unavailable("cannot read %s: %s" % (path, exc.strerror))
    return src.exe_header()


def grsecurity_evidence(src):
    """(True/False/None, [evidence strings])."""
    evidence = []
    if src.exists("/proc/sys/kernel/grsecurity"):
        evidence.append("/proc/sys/kernel/grsecurity exists")
    if src.exists("/dev/grsec"):
        evidence.append("/dev/grsec exists (RBAC)")
    release = src.kernel_release() or ""
    if "grsec" in release:
        evidence.append("kernel release %s" % release)
    try:
        options, source = kernel_config(src)
        if options.get("CONFIG_GRKERNSEC"):
            evidence.append("CONFIG_GRKERNSEC=%s in %s" % (options["CONFIG_GRKERNSEC"], source))
        elif not evidence:
            return False, ["CONFIG_GRKERNSEC is not set in %s" % source]
    except Unavailable:
        pass
    if evidence:
        return True, evidence
    return None, ["no grsecurity sysctl directory, /dev/grsec or kernel config to tell"]


@register
class PaX(Detector):
    name = "pax"
    title = "PaX / grsecurity"
    oses = LINUX

    def read(self, src):
        status = src.status()
        line = status.get("PaX")
        if line is None:
            return {"state": "absent", "reason": "no PaX: line in /proc/self/status: the kernel has no PaX"}
        parsed = _markings.parse_pax_line(line)
        if parsed is None:
            return unknown("unrecognised PaX: line %r in /proc/self/status" % line, status_line=line)
        out = {"state": None, "status_line": parsed["raw"], "flags": parsed["flags"],
               "mprotect_effective": None, "softmode": None}
        if parsed["no_mm"]:
            out["state"] = "no_mm"
            out["reason"] = ("PaX:\t----- : this task has no memory descriptor, so its flags "
                             "are not shown; a normal process shows five letters")
        else:
            f = parsed["flags"]
            # MPROTECT only acts together with a non-executable page feature.
            out["mprotect_effective"] = f["mprotect"] and (f["pageexec"] or f["segmexec"])
            out["state"] = "on" if (f["pageexec"] or f["segmexec"] or f["mprotect"]) else "off"
        try:
            out["softmode"] = _parse.to_int(src.read_text("/proc/sys/kernel/pax/softmode"))
        except Unavailable as exc:
            out["softmode_reason"] = "%s (root-only, and present only with CONFIG_PAX_SOFTMODE)" % exc
        gr, evidence = grsecurity_evidence(src)
        out["grsecurity"] = gr
        out["grsecurity_evidence"] = evidence
        marks = interpreter_markings(src)
        out["interpreter"] = marks["interpreter"]
        out["markings"] = {k: marks[k] for k in ("source", "xattr", "pt_pax_flags", "exempt",
                                                  "forced")}
        if marks["notes"]:
            out["markings"]["notes"] = marks["notes"]
        out["scope"] = _scope(out, marks)
        return out


def _scope(out, marks):
    exe = marks["interpreter"] or "the interpreter"
    if marks["source"] is None:
        text = ("%s carries no PaX markings, so these are the kernel's defaults for "
                "unmarked programs" % exe)
        if out.get("softmode") == 1:
            text += " (soft mode: features stay off unless a program is marked to enable them)"
        return text
    how = ("user.pax.flags=%s" % marks["xattr"]) if marks["source"] == "xattr" else (
        "PT_PAX_FLAGS %s" % marks["pt_pax_flags"]["letters"])
    parts = []
    if marks["exempt"]:
        parts.append("%s off" % ", ".join(n.upper() for n in marks["exempt"]))
    if marks["forced"]:
        parts.append("%s on" % ", ".join(n.upper() for n in marks["forced"]))
    return ("these results hold only for programs marked like %s (%s: %s); unmarked programs "
            "run with the kernel defaults: run memprobe from an unmarked copy of the "
            "interpreter to see those" % (exe, how, "; ".join(parts)))


# --- SELinux --------------------------------------------------------------------------

SELINUX_BOOLEANS = ("deny_execmem", "selinuxuser_execmod", "selinuxuser_execheap",
                    "selinuxuser_execstack", "allow_execmem", "allow_execstack", "allow_execheap",
                    "allow_execmod")


@register
class SELinux(Detector):
    name = "selinux"
    title = "SELinux"
    oses = LINUX

    def read(self, src):
        mount = None
        enforce = None
        reasons = []
        for candidate in ("/sys/fs/selinux", "/selinux"):
            try:
                enforce = src.read_text(candidate + "/enforce").strip()
                mount = candidate
                break
            except Unavailable as exc:
                reasons.append(str(exc))
        if mount is None:
            if any(r.startswith("cannot read") for r in reasons):
                return unknown("; ".join(reasons))
            return {"state": "disabled",
                    "reason": "selinuxfs is not mounted (no /sys/fs/selinux/enforce): SELinux is off"}
        if enforce not in ("0", "1"):
            return unknown("unexpected %s/enforce content %r" % (mount, enforce), mount=mount)
        out = {"state": "enforcing" if enforce == "1" else "permissive", "mount": mount,
               "context": None, "booleans": {}}
        try:
            out["context"] = _parse.parse_context(src.read_bytes("/proc/self/attr/current"))
        except Unavailable as exc:
            out["context_reason"] = str(exc)
        pending = {}
        for name in SELINUX_BOOLEANS:
            try:
                value = _parse.parse_selinux_bool(src.read_text("%s/booleans/%s" % (mount, name)))
            except Unavailable:
                continue
            if value is not None:
                out["booleans"][name] = value[0]
                if value[1] != value[0]:
                    pending[name] = value[1]
        if pending:
            out["booleans_pending"] = pending
        return out


# --- seccomp / MDWE / personality ------------------------------------------------------


@register
class Seccomp(Detector):
    name = "seccomp"
    title = "seccomp"
    oses = LINUX

    def read(self, src):
        status = src.status()
        mode = _parse.to_int(status.get("Seccomp"))
        out = {"state": {0: "disabled", 1: "strict", 2: "filter"}.get(mode, "unknown"),
               "mode": mode, "filters": _parse.to_int(status.get("Seccomp_filters")),
               "no_new_privs": None if "NoNewPrivs" not in status else status["NoNewPrivs"] == "1"}
        if mode is None:
            out["reason"] = "no Seccomp: line in /proc/self/status (kernel without CONFIG_SECCOMP)"
        elif mode == 2:
            out["note"] = ("the filter itself cannot be read without ptrace and CAP_SYS_ADMIN; "
                           "what it refuses is inferred from the probes")
        return out


PR_GET_MDWE = 66


def _live_mdwe():
    import ctypes
    import errno
    from probe.platform import libc as _libc
    prctl = _libc.symbol("prctl", ctypes.c_int, [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong,
                                                 ctypes.c_ulong, ctypes.c_ulong])
    if prctl is None:
        raise Unavailable("this C library has no prctl()")
    ctypes.set_errno(0)
    value = prctl(PR_GET_MDWE, 0, 0, 0, 0)
    if value < 0:
        err = ctypes.get_errno()
        if err == errno.EINVAL:
            return None
        raise Unavailable("prctl(PR_GET_MDWE): %s" % os.strerror(err))
    return value


@register
class MDWE(Detector):
    name = "mdwe"
    title = "prctl memory-deny-write-execute"
    oses = LINUX

    def read(self, src):
        if src.live:
            value = _live_mdwe()
        else:
            raw = src.recorded("prctl PR_GET_MDWE")
            value = None if raw.upper() == "EINVAL" else _parse.to_int(raw)
            if value is None and raw.upper() != "EINVAL":
                return unknown("calls.txt has %r for prctl PR_GET_MDWE" % raw)
        if value is None:
            return {"state": "unsupported", "value": None,
                    "reason": "prctl(PR_GET_MDWE) gives EINVAL: the kernel predates MDWE (Linux 6.3)"}
        return {"state": "on" if value & 1 else "off", "value": value,
                "refuse_exec_gain": bool(value & 1), "no_inherit": bool(value & 2)}


READ_IMPLIES_EXEC = 0x0400000


@register
class Personality(Detector):
    name = "personality"
    title = "READ_IMPLIES_EXEC personality"
    oses = LINUX

    def read(self, src):
        raw = src.read_text("/proc/self/personality")
        value = _parse.parse_personality(raw)
        if value is None:
            return unknown("unexpected /proc/self/personality content %r" % raw.strip())
        rie = bool(value & READ_IMPLIES_EXEC)
        return {"state": "on" if rie else "off", "value": "0x%08x" % value, "read_implies_exec": rie}


@register
class MemfdNoexec(Detector):
    name = "memfd_noexec"
    title = "vm.memfd_noexec"
    oses = LINUX

    def read(self, src):
        try:
            raw = src.read_text("/proc/sys/vm/memfd_noexec")
        except Unavailable as exc:
            if str(exc).startswith("no "):
                return {"state": "absent", "value": None,
                        "reason": "no /proc/sys/vm/memfd_noexec: the kernel predates it (Linux 6.3)"}
            raise
        value = _parse.to_int(raw)
        if value not in (0, 1, 2):
            return unknown("unexpected vm.memfd_noexec value %r" % raw.strip())
        return {"state": ("off", "on", "enforcing")[value], "value": value}


@register
class KernelConfig(Detector):
    name = "kernel_config"
    title = "kernel configuration (PaX, grsecurity, SELinux, seccomp options)"
    oses = LINUX

    def read(self, src):
        try:
            options, source = kernel_config(src)
        except Unavailable as exc:
            if all(part.startswith("no ") for part in str(exc).split("; ")):
                return {"state": "absent", "reason": "%s: the kernel config is not published" % exc}
            raise
        return {"state": "found", "source": source, "options": options}
