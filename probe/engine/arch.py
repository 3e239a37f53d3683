"""Machine code and calling convention per CPU: one table.

Each entry encodes a leaf function `int f(void) { return N; }` for an immediate N
(23 for the probes, 42 for patching), says how to call it and how to make the
instruction cache see freshly written code. Encodings were checked against
binutils/capstone and run under qemu-user (see the README's provenance notes).
"""

import ctypes
import struct
import sys

from probe.platform import libc as _libc


class Arch:
    """One CPU entry of the table."""

    def __init__(self, name, encode, flush="none", call="direct", note=""):
        self.name = name
        self._encode = encode
        self.flush_method = flush      # none | clear_cache | riscv | mips
        self.call_kind = call          # direct | thumb | descriptor
        self.note = note

    def code(self, value: int = 23) -> bytes:
        """The bytes of a function returning `value` (0..255 fits every encoding)."""
        if not 0 <= value < 256:
            raise ValueError("immediate out of range")
        return self._encode(value)

    def __repr__(self):
        return "Arch(%s)" % self.name


def _le_or_be(byteorder):
    return "<" if byteorder == "little" else ">"


def _x86(v):
    return b"\xb8" + struct.pack("<I", v) + b"\xc3"              # mov eax, v ; ret


def _aarch64(v):
    return struct.pack("<II", 0x52800000 | (v << 5), 0xD65F03C0)  # movz w0, #v ; ret


def _arm(v):
    return struct.pack("<II", 0xE3A00000 | v, 0xE12FFF1E)         # mov r0, #v ; bx lr


def _thumb(v):
    return struct.pack("<HH", 0x2000 | v, 0x4770)                 # movs r0, #v ; bx lr


def _riscv64(v):
    # addi a0, zero, v ; jalr zero, 0(ra) -- uncompressed, so no C extension needed
    return struct.pack("<II", (v << 20) | (10 << 7) | 0x13, 0x00008067)


def _ppc(order):
    return lambda v: struct.pack(order + "II", 0x38600000 | v, 0x4E800020)  # li r3, v ; blr


def _s390x(v):
    return struct.pack(">IH", 0xA7290000 | v, 0x07FE)             # lghi %r2, v ; br %r14


def _mips(order):
    # addiu v0, zero, v ; jalr zero, ra (valid on R2 and R6, unlike jr) ; nop (delay slot)
    return lambda v: struct.pack(order + "III", 0x24020000 | v, 0x03E00009, 0)


def _loongarch64(v):
    return struct.pack("<II", 0x02800000 | (v << 10) | 4, 0x4C000020)  # addi.w a0, zero, v ; ret


TABLE = {
    "x86_64": Arch("x86_64", _x86),
    "i386": Arch("i386", _x86),
    "aarch64": Arch("aarch64", _aarch64, flush="clear_cache"),
    "arm": Arch("arm", _arm, flush="clear_cache"),
    "arm-thumb": Arch("arm-thumb", _thumb, flush="clear_cache", call="thumb"),
    "riscv64": Arch("riscv64", _riscv64, flush="riscv"),
    "ppc64le": Arch("ppc64le", _ppc("<"), note="POWER5+ icache is coherent; mprotect synchronises"),
    "ppc64": Arch("ppc64", _ppc(">"), call="descriptor",
                  note="ELFv1: called through a function descriptor {entry, toc, env}"),
    "ppc64-elfv2": Arch("ppc64-elfv2", _ppc(">")),
    "s390x": Arch("s390x", _s390x),
    "mips": Arch("mips", _mips(">"), flush="mips"),
    "mipsel": Arch("mipsel", _mips("<"), flush="mips"),
    "mips64": Arch("mips64", _mips(">"), flush="mips"),
    "mips64el": Arch("mips64el", _mips("<"), flush="mips"),
    "loongarch64": Arch("loongarch64", _loongarch64, flush="clear_cache"),
}


# How each CPU family picks its table entry from the pointer size, the byte order, the
# ELF ABI (ppc64) and the ARM instruction set; None where no entry fits.

def _x86(bits, order, abi, arm_mode):
    return "x86_64" if bits == 64 else "i386"


def _arm(bits, order, abi, arm_mode):
    if order != "little":
        return None
    if bits == 64:
        return "aarch64"
    return "arm-thumb" if arm_mode == "thumb" else "arm"


def _riscv(bits, order, abi, arm_mode):
    return "riscv64" if bits == 64 else None


def _ppc64le(bits, order, abi, arm_mode):
    return "ppc64le"


def _ppc(bits, order, abi, arm_mode):
    if bits != 64:
        return None
    if order == "little":
        return "ppc64le"
    return "ppc64-elfv2" if abi == 2 else "ppc64"


def _s390x(bits, order, abi, arm_mode):
    return "s390x" if bits == 64 else None


def _mips(bits, order, abi, arm_mode):
    return ("mips64" if bits == 64 else "mips") + ("el" if order == "little" else "")


def _loongarch(bits, order, abi, arm_mode):
    return "loongarch64" if bits == 64 else None


# (uname machine names, machine name prefixes, how the family picks), first match wins.
_FAMILIES = (
    (("x86_64", "amd64", "x64", "i386", "i486", "i586", "i686", "i86pc", "x86"), (), _x86),
    (("aarch64", "arm64", "aarch64_be", "armv8l", "armv8b"), ("arm",), _arm),
    ((), ("riscv",), _riscv),
    (("ppc64le", "powerpc64le"), (), _ppc64le),
    (("ppc64", "powerpc64", "powerpc"), (), _ppc),
    (("s390x",), (), _s390x),
    ((), ("mips",), _mips),
    ((), ("loongarch",), _loongarch),
)


def detect_name(machine: "str | None", pointer_bits: int, byteorder: str, elf_abi: "int | None" = None,
                arm_mode: str = "arm") -> "str | None":
    """The table entry for this interpreter, or None when no entry fits.

    The pointer size matters as much as uname's machine: a 32-bit Python on a 64-bit
    kernel (i386 on x86_64, armhf on arm64) reports the kernel's machine.
    """
    m = (machine or "").lower()
    for names, prefixes, pick in _FAMILIES:
        if m in names or m.startswith(prefixes):
            return pick(pointer_bits, byteorder, elf_abi, arm_mode)
    return None


def elf_abi_version(path: "str | None" = None) -> "int | None":
    """e_flags & 3 of an ELF file (ppc64: 2 = ELFv2, 0/1 = ELFv1), or None."""
    path = path or sys.executable
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return None
    if len(head) < 52 or head[:4] != b"\x7fELF":
        return None
    order = "<" if head[5] == 1 else ">"
    offset = 48 if head[4] == 2 else 36   # e_flags in ELF64 / ELF32
    return struct.unpack_from(order + "I", head, offset)[0] & 3


# --- calling -------------------------------------------------------------

_PROTO = ctypes.CFUNCTYPE(ctypes.c_int)


class Callable:
    """A ctypes function for code at `addr`, keeping any descriptor alive."""

    def __init__(self, arch, addr):
        self._keep = None
        if arch.call_kind == "thumb":
            target = addr | 1
        elif arch.call_kind == "descriptor":
            self._keep = make_descriptor(addr)
            target = ctypes.addressof(self._keep)
        else:
            target = addr
        self.target = target
        self._fn = _PROTO(target)

    def __call__(self):
        return self._fn()


def make_descriptor(entry: int, toc: int = 0, env: int = 0) -> "ctypes.Array":
    """An ELFv1 function descriptor {entry, toc, env}: three native-endian pointers."""
    return (ctypes.c_uint64 * 3)(entry, toc, env)


# --- instruction cache -----------------------------------------------------

_flushers = {}


def flush_icache(arch: Arch, addr: int, size: int) -> str:
    """Make the instruction cache see bytes just written at addr; returns the method used."""
    method = arch.flush_method
    if method == "none":
        return "not needed"
    fn = _flushers.get(method)
    if fn is None:
        fn = _flushers[method] = _load_flusher(method)
    if isinstance(fn, str):
        return fn  # the reason it is unavailable
    fn(addr, size)
    return method


def _load_flusher(method):
    if method == "clear_cache":
        try:
            gcc = ctypes.CDLL("libgcc_s.so.1")
            clear = gcc.__clear_cache
        except (OSError, AttributeError):
            return "unavailable: libgcc_s __clear_cache not found"
        clear.restype = None
        clear.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        return lambda a, n: clear(a, a + n)
    if method == "riscv":
        fn = _libc.symbol("__riscv_flush_icache", ctypes.c_int,
                          [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_ulong])
        if fn is not None:
            return lambda a, n: fn(a, a + n, 0)
        syscall = _libc.symbol("syscall", ctypes.c_long, None)
        if syscall is None:
            return "unavailable: no __riscv_flush_icache or syscall()"
        # riscv_flush_icache is syscall 259 on riscv64 Linux
        return lambda a, n: syscall(ctypes.c_long(259), ctypes.c_void_p(a),
                                    ctypes.c_void_p(a + n), ctypes.c_ulong(0))
    if method == "mips":
        fn = _libc.symbol("cacheflush", ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, ctypes.c_int])
        if fn is None:
            return "unavailable: no cacheflush() in libc"
        return lambda a, n: fn(a, n, 3)   # BCACHE: data and instruction caches
    return "unavailable: unknown method %s" % method
