"""Pure parsers of PaX and ELF markings: the PaX line of /proc/<pid>/status, the
user.pax.flags xattr, PT_PAX_FLAGS, PT_GNU_STACK and the BSD ELF notes. Bytes or text in,
plain values out; nothing here touches the host.
"""

import struct

# --- PaX ------------------------------------------------------------------------

# Order of the letters on the `PaX:` line of /proc/<pid>/status (grsecurity's task_pax).
PAX_LETTERS = (("P", "pageexec"), ("E", "emutramp"), ("M", "mprotect"), ("R", "randmmap"),
               ("S", "segmexec"))
PAX_FEATURE = {letter: name for letter, name in PAX_LETTERS}

# PT_PAX_FLAGS program header (paxctl) and its p_flags bits: an enable and a disable bit
# per feature; neither set means "kernel default".
PT_PAX_FLAGS = 0x65041580
PT_GNU_STACK = 0x6474E551
PT_NOTE = 4
PT_NULL = 0
PT_OPENBSD_WXNEEDED = 0x65A3DBE7
PF_R, PF_W = 4, 2
PF_PAX_BITS = {  # feature -> (enable bit, disable bit)
    "pageexec": (1 << 4, 1 << 5),
    "segmexec": (1 << 6, 1 << 7),
    "mprotect": (1 << 8, 1 << 9),
    "emutramp": (1 << 12, 1 << 13),
    "randmmap": (1 << 14, 1 << 15),
}


def parse_pax_line(value: str) -> "dict | None":
    """The value of the `PaX:` status line.

    {'raw': 'PeMRs', 'no_mm': False, 'flags': {'pageexec': True, ...}} ; `-----` (a task
    without an mm) gives no_mm True and flags None; anything else malformed gives None.
    """
    if value is None:
        return None
    value = value.strip()
    if value == "-----":
        return {"raw": value, "no_mm": True, "flags": None}
    if len(value) != 5:
        return None
    flags = {}
    for char, (letter, name) in zip(value, PAX_LETTERS):
        if char == letter:
            flags[name] = True
        elif char == letter.lower():
            flags[name] = False
        else:
            return None
    return {"raw": value, "no_mm": False, "flags": flags}


def parse_pax_xattr(value: str) -> dict:
    """`user.pax.flags` as written by setfattr/paxctl-ng: each letter of PEMRS sets one
    feature, upper case on and lower case off, in any order ('em', 'm', 'mr').

    {'raw': 'em', 'flags': {'emutramp': False, 'mprotect': False}, 'valid': True}; the
    kernel ignores a value with any other character (or a letter given twice), so
    such a value is reported with valid False and no flags.
    """
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    raw = value.rstrip("\0")
    flags = {}
    for char in raw:
        name = PAX_FEATURE.get(char.upper())
        if name is None or name in flags:
            return {"raw": raw, "flags": {}, "valid": False}
        flags[name] = char.isupper()
    return {"raw": raw, "flags": flags, "valid": True}


def decode_pt_pax_flags(p_flags: int) -> dict:
    """PT_PAX_FLAGS p_flags -> {feature: True (forced on) / False (forced off)}; a
    feature with neither bit (or, contradictorily, both) is left to the kernel."""
    out = {}
    for name, (on, off) in PF_PAX_BITS.items():
        if p_flags & on and not p_flags & off:
            out[name] = True
        elif p_flags & off and not p_flags & on:
            out[name] = False
    return out


def pax_marking_letters(flags: dict) -> str:
    """{'mprotect': False, 'emutramp': False} -> 'em' (in PEMRS order)."""
    return "".join((letter if flags[name] else letter.lower())
                   for letter, name in PAX_LETTERS if name in flags)


# --- ELF ------------------------------------------------------------------------

NT_NETBSD_PAX = 3
NETBSD_PAX_BITS = {"mprotect": (0x01, 0x02), "segvguard": (0x04, 0x08), "aslr": (0x10, 0x20)}
NT_FREEBSD_FEATURE_CTL = 4
FREEBSD_FCTL = {0x01: "noaslr", 0x02: "noprotmax", 0x04: "nostackgap", 0x08: "wxneeded",
                0x10: "la48", 0x40: "la57"}


class ELFError(ValueError):
    pass


# Per ELF class: (offset of e_phoff, its struct code, offset of e_phentsize, the program
# header's struct layout and size, where p_flags sits in an entry).
_ELF_CLASS = {2: (32, "Q", 54, "IIQQQQQQ", 56, 4), 1: (28, "I", 42, "IIIIIIII", 32, 24)}


def _elf_ident(data):
    """(ELF class, struct byte-order prefix) of an ELF header; raises ELFError."""
    if len(data) < 52 or data[:4] != b"\x7fELF":
        raise ELFError("not an ELF file")
    cls, enc = data[4], data[5]
    if cls not in (1, 2) or enc not in (1, 2):
        raise ELFError("unknown ELF class %d / data encoding %d" % (cls, enc))
    if cls == 2 and len(data) < 64:
        raise ELFError("truncated ELF header")
    return cls, "<" if enc == 1 else ">"


def _program_header_table(data, cls, e):
    """(e_phoff, e_phentsize, e_phnum), checked against the bytes read; raises ELFError."""
    at_phoff, phoff_code, at_phent, _, need, _ = _ELF_CLASS[cls]
    phoff, = struct.unpack_from(e + phoff_code, data, at_phoff)
    phentsize, phnum = struct.unpack_from(e + "HH", data, at_phent)
    if phnum == 0xFFFF:
        raise ELFError("more program headers than the ELF header can count (PN_XNUM)")
    if phnum and phentsize < need:
        raise ELFError("program header entries of %d bytes are too small" % phentsize)
    if phoff + phnum * phentsize > len(data):
        raise ELFError("program headers end beyond the %d bytes read" % len(data))
    return phoff, phentsize, phnum


def _program_header(data, cls, e, i, at):
    fields = struct.unpack_from(e + _ELF_CLASS[cls][3], data, at)
    if cls == 2:
        p_type, p_flags, p_offset, _, _, p_filesz, _, p_align = fields
    else:
        p_type, p_offset, _, _, p_filesz, _, p_flags, p_align = fields
    return {"index": i, "type": p_type, "flags": p_flags, "offset": p_offset,
            "filesz": p_filesz, "align": p_align,
            # where p_flags sits in the file, for unmark_elf()
            "entry_offset": at, "flags_offset": at + _ELF_CLASS[cls][5]}


def parse_elf(data: bytes) -> dict:
    """The parts of an ELF file's headers that carry W^X markings.

    data: the file's leading bytes (at least the ELF and program headers; note segments
    beyond the data are skipped). Works for 32- and 64-bit, both byte orders.
    Returns {'bits', 'endian', 'phdrs': [{'index','type','flags','offset','filesz',
    'align','entry_offset'}], 'notes': [{'name','type','desc'}]}; raises ELFError.
    """
    cls, e = _elf_ident(data)
    phoff, phentsize, phnum = _program_header_table(data, cls, e)
    phdrs = [_program_header(data, cls, e, i, phoff + i * phentsize) for i in range(phnum)]
    notes = []
    for ph in phdrs:
        if ph["type"] == PT_NOTE and ph["offset"] + ph["filesz"] <= len(data):
            notes.extend(_parse_notes(data[ph["offset"]:ph["offset"] + ph["filesz"]], e,
                                      8 if ph["align"] == 8 else 4))
    return {"bits": 64 if cls == 2 else 32, "endian": "little" if e == "<" else "big",
            "phdrs": phdrs, "notes": notes}


def _parse_notes(blob, e, align):
    notes = []
    pos = 0
    while pos + 12 <= len(blob):
        namesz, descsz, ntype = struct.unpack_from(e + "III", blob, pos)
        pos += 12
        name = blob[pos:pos + namesz].rstrip(b"\0").decode("ascii", "replace")
        pos += (namesz + align - 1) & ~(align - 1)
        desc = blob[pos:pos + descsz]
        pos += (descsz + align - 1) & ~(align - 1)
        if len(desc) < descsz:
            break
        notes.append({"name": name, "type": ntype, "desc": desc})
    return notes


def elf_header_size(data: bytes) -> "int | None":
    """How many leading bytes of an ELF file cover its ELF header, program headers and
    note segments (what parse_elf needs); None when data is not an ELF header."""
    try:
        elf = parse_elf(data)
    except ELFError:
        return None
    end = 64 if elf["bits"] == 64 else 52
    for ph in elf["phdrs"]:
        end = max(end, ph["entry_offset"] + (56 if elf["bits"] == 64 else 32))
        if ph["type"] == PT_NOTE:
            end = max(end, ph["offset"] + ph["filesz"])
    return end


def _netbsd_pax(word):
    flags = {}
    for name, (on, off) in NETBSD_PAX_BITS.items():
        if word & on:
            flags[name] = True
        elif word & off:
            flags[name] = False
    return {"value": "0x%02x" % word, "flags": flags}


def _freebsd_features(word):
    return {"value": "0x%08x" % word,
            "flags": sorted(name for bit, name in FREEBSD_FCTL.items() if word & bit)}


# The notes that carry markings: (name, type) -> (key in elf_markings(), decoder of the word).
_MARKING_NOTES = {("PaX", NT_NETBSD_PAX): ("netbsd_pax", _netbsd_pax),
                  ("FreeBSD", NT_FREEBSD_FEATURE_CTL): ("freebsd_features", _freebsd_features)}


def elf_markings(elf: dict) -> dict:
    """W^X-related markings of a parsed ELF: PaX (PT_PAX_FLAGS), NetBSD PaX note,
    FreeBSD feature-control note, OpenBSD PT_OPENBSD_WXNEEDED."""
    e = "<" if elf["endian"] == "little" else ">"
    out = {"pt_pax_flags": None, "netbsd_pax": None, "freebsd_features": None,
           "openbsd_wxneeded": False}
    for ph in elf["phdrs"]:
        if ph["type"] == PT_PAX_FLAGS:
            flags = decode_pt_pax_flags(ph["flags"])
            out["pt_pax_flags"] = {"p_flags": "0x%04x" % ph["flags"], "flags": flags,
                                   "letters": pax_marking_letters(flags)}
        elif ph["type"] == PT_OPENBSD_WXNEEDED:
            out["openbsd_wxneeded"] = True
    for note in elf["notes"]:
        known = _MARKING_NOTES.get((note["name"], note["type"]))
        if known is not None and len(note["desc"]) >= 4:
            word, = struct.unpack_from(e + "I", note["desc"])
            out[known[0]] = known[1](word)
    return out


def unmark_elf(data: bytes) -> list:
    """Edits that remove PaX markings from an ELF file: [(offset, bytes)].

    A PT_PAX_FLAGS header becomes PT_GNU_STACK RW (what `paxctl -c` converted it from)
    when the file has no PT_GNU_STACK, else PT_NULL, which loaders ignore.
    """
    elf = parse_elf(data)
    e = "<" if elf["endian"] == "little" else ">"
    has_stack = any(ph["type"] == PT_GNU_STACK for ph in elf["phdrs"])
    edits = []
    for ph in elf["phdrs"]:
        if ph["type"] != PT_PAX_FLAGS:
            continue
        if not has_stack:
            edits.append((ph["entry_offset"], struct.pack(e + "I", PT_GNU_STACK)))
            edits.append((ph["flags_offset"], struct.pack(e + "I", PF_R | PF_W)))
            has_stack = True
        else:
            edits.append((ph["entry_offset"], struct.pack(e + "I", PT_NULL)))
    return edits
