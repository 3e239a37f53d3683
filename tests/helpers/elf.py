"""Minimal ELF images for the marking parsers and the fixture trees."""

import struct

from probe.policy import markings as mk


def make_elf(bits=64, endian="little", osabi=0, phdrs=(), notes=(), note_align=4):
    """A minimal ELF header, program headers [(p_type, p_flags)] and one note segment."""
    e = "<" if endian == "little" else ">"
    ehsize, phentsize = (64, 56) if bits == 64 else (52, 32)
    allph = list(phdrs) + ([(mk.PT_NOTE, 4)] if notes else [])
    blob = b""
    for name, ntype, desc in notes:
        nb = name.encode() + b"\0"
        blob += struct.pack(e + "III", len(nb), len(desc), ntype)
        blob += nb + b"\0" * (-len(nb) % note_align) + desc + b"\0" * (-len(desc) % note_align)
    note_off = ehsize + phentsize * len(allph)
    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1 if endian == "little" else 2, 1, osabi]) + b"\0" * 8
    fmt = "HHIQQQIHHHHHH" if bits == 64 else "HHIIIIIHHHHHH"
    out = ident + struct.pack(e + fmt, 2, 62, 1, 0x1000, ehsize, 0, 0, ehsize, phentsize,
                              len(allph), 64, 0, 0)
    for p_type, p_flags in allph:
        off, size = (note_off, len(blob)) if p_type == mk.PT_NOTE else (0, 0)
        align = note_align if p_type == mk.PT_NOTE else 8
        if bits == 64:
            out += struct.pack(e + "IIQQQQQQ", p_type, p_flags, off, off, off, size, size, align)
        else:
            out += struct.pack(e + "IIIIIIII", p_type, off, off, off, size, size, p_flags, align)
    return out + blob
