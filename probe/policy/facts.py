"""Facts the mechanism detectors share, and the detectors of facts that are no mechanism
of their own: the kernel configuration and the process's personality."""

from probe.policy import Detector, Source, Unavailable, unknown
from probe.policy import parse as _parse
from probe.policy import markings as _markings
from probe.platform.constants import READ_IMPLIES_EXEC


# --- kernel configuration ----------------------------------------------------------------


def kernel_config(src: Source) -> tuple:
    """The kernel config options that matter, cached on the source; (dict, source) or
    raises Unavailable."""
    value = src.cached("kconfig", lambda: _read_kernel_config(src))
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


class KernelConfig(Detector):
    name = "kernel_config"
    title = "kernel configuration (PaX, grsecurity, SELinux, seccomp options)"
    oses = ("linux",)
    order = 80

    def read(self, src: Source) -> dict:
        try:
            options, source = kernel_config(src)
        except Unavailable as exc:
            if all(part.startswith("no ") for part in str(exc).split("; ")):
                return {"state": "absent", "reason": "%s: the kernel config is not published" % exc}
            raise
        return {"state": "found", "source": source, "options": options}


class Personality(Detector):
    name = "personality"
    title = "READ_IMPLIES_EXEC personality"
    oses = ("linux",)
    order = 60

    def read(self, src: Source) -> dict:
        raw = src.read_text("/proc/self/personality")
        value = _parse.parse_personality(raw)
        if value is None:
            return unknown("unexpected /proc/self/personality content %r" % raw.strip())
        rie = bool(value & READ_IMPLIES_EXEC)
        return {"state": "on" if rie else "off", "value": "0x%08x" % value, "read_implies_exec": rie}


FACT_DETECTORS = (KernelConfig(), Personality())


# --- sysctls -----------------------------------------------------------------------------


def int_sysctl(src: Source, name: str, reasons: list) -> "int | None":
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


# --- the interpreter binary ----------------------------------------------------------------


def interpreter_elf(src: Source) -> tuple:
    """(path, ELF markings dict or None, note or None) of the running interpreter."""
    try:
        marks = _markings.elf_markings(_markings.parse_elf(src.exe_header()))
        return src.executable(), marks, None
    except Unavailable as exc:
        return src.executable(), None, str(exc)
    except _markings.ELFError as exc:
        return src.executable(), None, "cannot parse the interpreter's ELF headers: %s" % exc


def _xattr_marking(src, path, notes):
    """The parsed user.pax.flags of the interpreter, or None."""
    try:
        raw = src.pax_xattr(path)
    except Unavailable as exc:
        notes.append(str(exc))
        return None
    if raw is None:
        return None
    xattr = _markings.parse_pax_xattr(raw)
    if not xattr["valid"]:
        notes.append("user.pax.flags=%r is not a valid marking; the kernel ignores it" % xattr["raw"])
    return xattr


def _pt_pax_flags(src, path, notes):
    """The PT_PAX_FLAGS program header (paxctl) of the interpreter, or None."""
    try:
        data = src.exe_header(path=path)
        return _markings.elf_markings(_markings.parse_elf(data))["pt_pax_flags"]
    except Unavailable as exc:
        notes.append(str(exc))
    except _markings.ELFError as exc:
        notes.append("cannot parse the interpreter's ELF headers: %s" % exc)
    return None


def _marking_in_force(xattr, pt):
    """(where the flags in force come from, {flag: on}): a valid xattr wins over PT_PAX_FLAGS."""
    if xattr is not None and xattr["valid"] and xattr["flags"]:
        return "xattr", xattr["flags"]
    if pt is not None and pt["flags"]:
        return "pt_pax_flags", pt["flags"]
    return None, {}


def interpreter_markings(src: Source, path: "str | None" = None) -> dict:
    """PaX markings of the interpreter binary: {'interpreter', 'xattr', 'pt_pax_flags',
    'source', 'flags', 'exempt', 'forced', 'notes': [...]}."""
    notes = []
    # xattr user.pax.flags: takes precedence over PT_PAX_FLAGS (CONFIG_PAX_XATTR_PAX_FLAGS).
    xattr = _xattr_marking(src, path, notes)
    pt = _pt_pax_flags(src, path, notes)
    source, flags = _marking_in_force(xattr, pt)
    return {"interpreter": path or src.executable(),
            "xattr": None if xattr is None else xattr["raw"], "pt_pax_flags": pt,
            "source": source, "flags": flags,
            "exempt": sorted(name for name, on in flags.items() if not on),
            "forced": sorted(name for name, on in flags.items() if on), "notes": notes}
