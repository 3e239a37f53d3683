"""ppc64 big-endian (ELFv1) calls go through a function descriptor.

No big-endian ppc64 Python can be had on this machine (Debian ships ppc64 only in its
ports archive), so the descriptor path cannot run under the cross rig: these tests
check its construction on whatever CPU runs them, without ever calling the code.
"""

import ctypes
import gc
import struct

import pytest

from probe.engine import arch as _arch

PPC64 = _arch.TABLE["ppc64"]


def _words(address, n=3):
    return [ctypes.c_uint64.from_address(address + 8 * i).value for i in range(n)]


def test_ppc64_elfv1_entry_calls_through_a_descriptor():
    assert PPC64.call_kind == "descriptor"
    # ELFv2 big-endian and little-endian ppc64 call the code directly.
    assert _arch.TABLE["ppc64-elfv2"].call_kind == "direct"
    assert _arch.TABLE["ppc64le"].call_kind == "direct"
    # li r3, 23 ; blr -- big-endian instruction words
    assert PPC64.code(23) == struct.pack(">II", 0x38600017, 0x4E800020)


def test_descriptor_is_three_native_words_entry_toc_env():
    desc = _arch.make_descriptor(0x10002000, toc=0x10008000, env=0x77)
    assert ctypes.sizeof(desc) == 24
    # Native byte order: on ppc64 (big-endian) the CPU loads these words big-endian.
    assert bytes(desc) == struct.pack("=QQQ", 0x10002000, 0x10008000, 0x77)
    assert _words(ctypes.addressof(desc)) == [0x10002000, 0x10008000, 0x77]
    # A leaf function needs no TOC and no environment pointer.
    assert _words(ctypes.addressof(_arch.make_descriptor(0x4000))) == [0x4000, 0, 0]


def test_callable_points_at_the_descriptor_not_the_code():
    code = ctypes.create_string_buffer(PPC64.code(23))
    entry = ctypes.addressof(code)
    fn = _arch.Callable(PPC64, entry)
    assert fn.target != entry
    # What ctypes will branch through is the descriptor, whose first word is the code.
    assert ctypes.cast(fn._fn, ctypes.c_void_p).value == fn.target
    assert _words(fn.target) == [entry, 0, 0]


def test_descriptor_stays_alive_as_long_as_the_callable():
    code = ctypes.create_string_buffer(PPC64.code(23))
    entry = ctypes.addressof(code)
    fns = [_arch.Callable(PPC64, entry + 4 * i) for i in range(64)]
    gc.collect()
    # Churn allocations of the descriptor's size: a freed descriptor would be reused.
    junk = [(ctypes.c_uint64 * 3)(0xDEAD, 0xDEAD, 0xDEAD) for _ in range(4096)]
    for i, fn in enumerate(fns):
        assert _words(fn.target) == [entry + 4 * i, 0, 0]
    del junk


@pytest.mark.parametrize("flags, expected", [(0, "ppc64"), (1, "ppc64"), (2, "ppc64-elfv2")])
def test_big_endian_elf_header_chooses_the_abi(tmp_path, flags, expected):
    # A big-endian ELF64 header as a ppc64 interpreter has: e_flags & 3 is the ABI.
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x02"
    header[18:20] = (21).to_bytes(2, "big")          # e_machine EM_PPC64
    header[48:52] = flags.to_bytes(4, "big")
    path = tmp_path / "python3"
    path.write_bytes(bytes(header))
    abi = _arch.elf_abi_version(str(path))
    assert abi == flags
    assert _arch.detect_name("ppc64", 64, "big", abi) == expected
    assert _arch.TABLE[expected].call_kind == ("descriptor" if expected == "ppc64" else "direct")
