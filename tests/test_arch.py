"""The machine-code table: encodings, selection, calling."""

import ctypes
import sys

import pytest

from probe.engine import arch as _arch
from probe.platform import libc as _libc

# Independently verified "return 23" encodings (assembled, disassembled and run).
VERIFIED = {
    "x86_64": b"\xb8\x17\x00\x00\x00\xc3",
    "i386": b"\xb8\x17\x00\x00\x00\xc3",
    "aarch64": b"\xe0\x02\x80\x52\xc0\x03\x5f\xd6",
    "arm": b"\x17\x00\xa0\xe3\x1e\xff\x2f\xe1",
    "arm-thumb": b"\x17\x20\x70\x47",
    "riscv64": b"\x13\x05\x70\x01\x67\x80\x00\x00",
    "ppc64le": b"\x17\x00\x60\x38\x20\x00\x80\x4e",
    "ppc64": b"\x38\x60\x00\x17\x4e\x80\x00\x20",
    "ppc64-elfv2": b"\x38\x60\x00\x17\x4e\x80\x00\x20",
    "s390x": b"\xa7\x29\x00\x17\x07\xfe",
    "mipsel": b"\x17\x00\x02\x24\x09\x00\xe0\x03\x00\x00\x00\x00",
    "mips64el": b"\x17\x00\x02\x24\x09\x00\xe0\x03\x00\x00\x00\x00",
    "mips": b"\x24\x02\x00\x17\x03\xe0\x00\x09\x00\x00\x00\x00",
    "mips64": b"\x24\x02\x00\x17\x03\xe0\x00\x09\x00\x00\x00\x00",
    "loongarch64": b"\x04\x5c\x80\x02\x20\x00\x00\x4c",
}

# The same functions returning 42, derived by hand from each ISA's immediate field.
PATCHED = {
    "x86_64": b"\xb8\x2a\x00\x00\x00\xc3",
    "aarch64": b"\x40\x05\x80\x52\xc0\x03\x5f\xd6",      # movz w0, #42: imm16 in bits 5-20
    "arm": b"\x2a\x00\xa0\xe3\x1e\xff\x2f\xe1",
    "arm-thumb": b"\x2a\x20\x70\x47",
    "riscv64": b"\x13\x05\xa0\x02\x67\x80\x00\x00",      # imm12 in bits 20-31
    "ppc64le": b"\x2a\x00\x60\x38\x20\x00\x80\x4e",
    "s390x": b"\xa7\x29\x00\x2a\x07\xfe",
    "mipsel": b"\x2a\x00\x02\x24\x09\x00\xe0\x03\x00\x00\x00\x00",
    "loongarch64": b"\x04\xa8\x80\x02\x20\x00\x00\x4c",  # si12 in bits 10-21
}


def test_every_table_entry_is_verified():
    assert set(_arch.TABLE) == set(VERIFIED)
    for name, code in VERIFIED.items():
        assert _arch.TABLE[name].code(23) == code, name


@pytest.mark.parametrize("name", sorted(PATCHED))
def test_patched_code_changes_only_the_immediate(name):
    assert _arch.TABLE[name].code(42) == PATCHED[name]


def test_immediate_out_of_range_is_refused():
    with pytest.raises(ValueError):
        _arch.TABLE["x86_64"].code(256)


@pytest.mark.parametrize("machine, bits, order, abi, mode, expected", [
    ("x86_64", 64, "little", None, "arm", "x86_64"),
    ("x86_64", 32, "little", None, "arm", "i386"),      # i386 Python on an x86_64 kernel
    ("i686", 32, "little", None, "arm", "i386"),
    ("amd64", 64, "little", None, "arm", "x86_64"),     # FreeBSD
    ("aarch64", 64, "little", None, "arm", "aarch64"),
    ("arm64", 64, "little", None, "arm", "aarch64"),
    ("aarch64", 32, "little", None, "arm", "arm"),      # armhf userland on an arm64 kernel
    ("armv7l", 32, "little", None, "arm", "arm"),
    ("armv7l", 32, "little", None, "thumb", "arm-thumb"),
    ("riscv64", 64, "little", None, "arm", "riscv64"),
    ("ppc64le", 64, "little", None, "arm", "ppc64le"),
    ("ppc64", 64, "big", 1, "arm", "ppc64"),
    ("ppc64", 64, "big", 0, "arm", "ppc64"),
    ("ppc64", 64, "big", 2, "arm", "ppc64-elfv2"),
    ("s390x", 64, "big", None, "arm", "s390x"),
    ("mips", 32, "little", None, "arm", "mipsel"),
    ("mips", 32, "big", None, "arm", "mips"),
    ("mips64", 64, "little", None, "arm", "mips64el"),
    ("mips64", 64, "big", None, "arm", "mips64"),
    ("loongarch64", 64, "little", None, "arm", "loongarch64"),
    ("sparc64", 64, "big", None, "arm", None),
    ("ppc", 32, "big", None, "arm", None),
])
def test_detect_name(machine, bits, order, abi, mode, expected):
    assert _arch.detect_name(machine, bits, order, abi, mode) == expected


def test_elf_abi_version_reads_the_interpreter_header(tmp_path):
    assert _arch.elf_abi_version(sys.executable) in (0, 1, 2, 3)
    # A big-endian ELF64 header with e_flags = 2 (ELFv2), as on ppc64 ELFv2 systems.
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x02"
    header[48:52] = (2).to_bytes(4, "big")
    path = tmp_path / "elf"
    path.write_bytes(bytes(header))
    assert _arch.elf_abi_version(str(path)) == 2
    path.write_bytes(b"#!/bin/sh\n")
    assert _arch.elf_abi_version(str(path)) is None


def test_thumb_call_sets_the_low_bit():
    page = _libc.mmap_(_libc.PAGESIZE, _libc.RW, _libc.MAP_PRIVATE | _libc.MAP_ANONYMOUS)
    try:
        fn = _arch.Callable(_arch.TABLE["arm-thumb"], page)
        assert fn.target == page | 1
        assert _arch.Callable(_arch.TABLE["arm"], page).target == page
    finally:
        _libc.munmap(page, _libc.PAGESIZE)


def test_flush_is_a_no_op_where_the_cpu_needs_none():
    assert _arch.flush_icache(_arch.TABLE["x86_64"], 0, 0) == "not needed"
    assert _arch.flush_icache(_arch.TABLE["s390x"], 0, 0) == "not needed"


def test_clear_cache_is_callable_here_when_libgcc_exists():
    # On x86 __clear_cache is a no-op, but loading and calling it proves the binding.
    try:
        ctypes.CDLL("libgcc_s.so.1")
    except OSError:
        pytest.skip("libgcc_s.so.1 is not installed")
    page = _libc.mmap_(_libc.PAGESIZE, _libc.RW, _libc.MAP_PRIVATE | _libc.MAP_ANONYMOUS)
    try:
        assert _arch.flush_icache(_arch.TABLE["aarch64"], page, 8) == "clear_cache"
    finally:
        _libc.munmap(page, _libc.PAGESIZE)
