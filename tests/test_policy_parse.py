"""The pure parsers of probe/policy/parse.py, on real formats and on junk."""

import struct

import pytest
from hypothesis import given, settings, strategies as st

from probe.platform.procfs import parse_status
from probe.policy import parse as p
from probe.policy import markings as mk

from helpers.elf import make_elf


# --- PaX ------------------------------------------------------------------------------

def test_pax_line_letters():
    r = mk.parse_pax_line("PeMRs")
    assert r["flags"] == {"pageexec": True, "emutramp": False, "mprotect": True, "randmmap": True,
                          "segmexec": False}
    assert not r["no_mm"]
    assert mk.parse_pax_line("PemRs")["flags"]["mprotect"] is False
    assert mk.parse_pax_line("pemrs")["flags"] == dict.fromkeys(
        ("pageexec", "emutramp", "mprotect", "randmmap", "segmexec"), False)


def test_pax_line_without_mm_and_junk():
    assert mk.parse_pax_line("-----") == {"raw": "-----", "no_mm": True, "flags": None}
    for junk in ("", "PeMR", "PeMRsX", "XeMRs", "EPMRs", None):
        assert mk.parse_pax_line(junk) is None


@pytest.mark.parametrize("value,flags", [
    ("em", {"emutramp": False, "mprotect": False}),
    ("m", {"mprotect": False}),
    ("mr", {"mprotect": False, "randmmap": False}),
    ("epm", {"emutramp": False, "pageexec": False, "mprotect": False}),
    ("M", {"mprotect": True}),
    (b"em\0", {"emutramp": False, "mprotect": False}),
])
def test_pax_xattr(value, flags):
    r = mk.parse_pax_xattr(value)
    assert r["valid"] and r["flags"] == flags


@pytest.mark.parametrize("value", ["x", "mm", "mM", "-m", "m e"])
def test_pax_xattr_invalid_values_are_ignored_like_the_kernel_does(value):
    r = mk.parse_pax_xattr(value)
    assert not r["valid"] and r["flags"] == {}


def test_pt_pax_flags_bits():
    assert mk.decode_pt_pax_flags(0x200) == {"mprotect": False}
    assert mk.decode_pt_pax_flags(0x2000 | 0x200) == {"emutramp": False, "mprotect": False}
    assert mk.decode_pt_pax_flags(0x10 | 0x100) == {"pageexec": True, "mprotect": True}
    assert mk.decode_pt_pax_flags(0x100 | 0x200) == {}      # contradictory: kernel default
    assert mk.decode_pt_pax_flags(mk.PF_R | mk.PF_W) == {}
    assert mk.pax_marking_letters({"mprotect": False, "emutramp": False}) == "em"


# --- ELF ------------------------------------------------------------------------------

@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("endian", ["little", "big"])
def test_elf_markings_all_classes_and_byte_orders(bits, endian):
    word = (lambda v: v.to_bytes(4, endian))
    data = make_elf(bits, endian, phdrs=[(1, 5), (mk.PT_GNU_STACK, 6), (mk.PT_PAX_FLAGS, 0x2200),
                                         (mk.PT_OPENBSD_WXNEEDED, 0)],
                    notes=[("FreeBSD", 1, word(1401000)), ("FreeBSD", 4, word(0x8)),
                           ("PaX", 3, word(0x02)), ("NetBSD", 1, word(1000000000))])
    elf = mk.parse_elf(data)
    assert elf["bits"] == bits and elf["endian"] == endian
    assert [ph["type"] for ph in elf["phdrs"]][:4] == [1, mk.PT_GNU_STACK, mk.PT_PAX_FLAGS,
                                                       mk.PT_OPENBSD_WXNEEDED]
    m = mk.elf_markings(elf)
    assert m["pt_pax_flags"] == {"p_flags": "0x2200", "flags": {"emutramp": False, "mprotect": False},
                                 "letters": "em"}
    assert m["freebsd_features"]["flags"] == ["wxneeded"]
    assert m["netbsd_pax"]["flags"] == {"mprotect": False}
    assert m["openbsd_wxneeded"] is True
    assert mk.elf_header_size(data) == len(data)


def test_elf_notes_with_8_byte_alignment():
    data = make_elf(64, "little", notes=[("GNU", 5, b"\0" * 12), ("FreeBSD", 4, struct.pack("<I", 8))],
                    note_align=8)
    assert mk.elf_markings(mk.parse_elf(data))["freebsd_features"]["flags"] == ["wxneeded"]


def test_elf_errors():
    with pytest.raises(mk.ELFError):
        mk.parse_elf(b"#!/bin/sh\n" + b"\0" * 64)
    with pytest.raises(mk.ELFError):
        mk.parse_elf(make_elf(64, phdrs=[(1, 5)] * 4)[:100])     # headers cut off
    bad = bytearray(make_elf(64))
    bad[4] = 7
    with pytest.raises(mk.ELFError):
        mk.parse_elf(bytes(bad))
    assert mk.elf_header_size(b"not elf") is None


def test_elf_of_the_running_interpreter():
    with open("/proc/self/exe", "rb") as f:
        elf = mk.parse_elf(f.read(65536))
    types = [ph["type"] for ph in elf["phdrs"]]
    assert 1 in types                 # PT_LOAD
    assert elf["bits"] == struct.calcsize("P") * 8


def apply(data, edits):
    b = bytearray(data)
    for off, patch in edits:
        b[off:off + len(patch)] = patch
    return bytes(b)


@pytest.mark.parametrize("endian", ["little", "big"])
@pytest.mark.parametrize("bits", [32, 64])
def test_unmark_turns_pt_pax_flags_back_into_gnu_stack(bits, endian):
    marked = make_elf(bits, endian, phdrs=[(1, 5), (mk.PT_PAX_FLAGS, 0x200)])
    out = mk.parse_elf(apply(marked, mk.unmark_elf(marked)))
    assert [(ph["type"], ph["flags"]) for ph in out["phdrs"]] == [(1, 5), (mk.PT_GNU_STACK, mk.PF_R | mk.PF_W)]
    assert mk.elf_markings(out)["pt_pax_flags"] is None


def test_unmark_keeps_an_existing_gnu_stack():
    marked = make_elf(64, phdrs=[(mk.PT_GNU_STACK, 6), (mk.PT_PAX_FLAGS, 0x200)])
    out = mk.parse_elf(apply(marked, mk.unmark_elf(marked)))
    assert [ph["type"] for ph in out["phdrs"]] == [mk.PT_GNU_STACK, mk.PT_NULL]
    assert mk.unmark_elf(make_elf(64, phdrs=[(mk.PT_GNU_STACK, 6)])) == []


# --- mounts ---------------------------------------------------------------------------

MOUNTINFO = r"""27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24684084k
30 25 0:27 / /dev/shm rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,size=24684084k
40 27 0:37 / /tmp rw,nosuid,nodev shared:19 master:2 - tmpfs tmpfs rw,noexec,inode64
41 27 0:38 / /mnt/with\040space rw,relatime - ext4 /dev/sdb rw
"""


def test_mountinfo_fields_and_escapes():
    mounts = p.parse_mountinfo(MOUNTINFO + "garbage line\n")
    assert [m["mount_point"] for m in mounts] == ["/", "/dev/shm", "/dev/shm", "/tmp", "/mnt/with space"]
    assert mounts[3]["fstype"] == "tmpfs" and "noexec" in mounts[3]["super_options"]


def test_mount_for_longest_prefix_and_stacking():
    mounts = p.parse_mountinfo(MOUNTINFO)
    shm = p.mount_for(mounts, "/dev/shm")
    assert p.is_noexec(shm)                       # the later mount hides the first
    assert p.mount_for(mounts, "/dev/shm/x/y")["mount_point"] == "/dev/shm"
    assert p.mount_for(mounts, "/tmpfoo")["mount_point"] == "/"      # not a path prefix
    assert p.is_noexec(p.mount_for(mounts, "/tmp/"))                   # super option noexec
    assert p.mount_for(mounts, "/mnt/with space/f")["fstype"] == "ext4"
    assert p.mount_for([], "/tmp") is None


def test_bsd_mount_formats():
    freebsd = p.parse_bsd_mount("zroot/ROOT/default on / (zfs, local, noatime, nfsv4acls)\n"
                                "tmpfs on /tmp (tmpfs, local, noexec)\ndevfs on /dev (devfs)\n")
    assert [(m["mount_point"], m["fstype"]) for m in freebsd] == [("/", "zfs"), ("/tmp", "tmpfs"),
                                                                   ("/dev", "devfs")]
    assert p.is_noexec(freebsd[1]) and not p.is_noexec(freebsd[0])
    openbsd = p.parse_bsd_mount("/dev/sd0h on /usr/local type ffs (local, nodev, wxallowed)\n"
                                "/dev/sd0a on / type ffs (local)\n")
    assert openbsd[0]["fstype"] == "ffs" and "wxallowed" in openbsd[0]["options"]
    assert p.mount_for(openbsd, "/usr/local/bin/python3.11")["mount_point"] == "/usr/local"


# --- small formats ------------------------------------------------------------------------

def test_sysctl_formats_of_each_bsd():
    text = ("kern.elf64.allow_wx: 0\nsecurity.pax.mprotect.global = 1\nkern.wxabort=1\n"
            "kern.version: FreeBSD 14.1-RELEASE releng/14.1-n267679: Fri May 31 2024\n"
            "\tcontinued line\n# comment\nkern.elf64.allow_wx: 1\n")
    kv = p.parse_kv(text)
    assert kv["kern.elf64.allow_wx"] == "0"          # first one wins
    assert kv["security.pax.mprotect.global"] == "1"
    assert kv["kern.wxabort"] == "1"
    assert kv["kern.version"].startswith("FreeBSD 14.1")
    assert p.parse_kv("prctl PR_GET_MDWE: EINVAL\n") == {"prctl PR_GET_MDWE": "EINVAL"}


def test_selinux_formats():
    assert p.parse_selinux_bool("1 0") == (True, False)
    assert p.parse_selinux_bool("1") is None and p.parse_selinux_bool("x y") is None
    assert p.parse_context(b"system_u:system_r:init_t:s0\0") == "system_u:system_r:init_t:s0"
    assert p.parse_context(b"\0") is None


def test_kernel_config():
    cfg = p.parse_kernel_config("CONFIG_PAX=y\n# CONFIG_PAX_MPROTECT_COMPAT is not set\n"
                                "CONFIG_PAX_RANDMMAP=y\nCONFIG_GRKERNSEC_PROC_GID=10\n"
                                "CONFIG_SECURITY_SELINUX=y\nCONFIG_LOCALVERSION=\"-x\"\n")
    assert cfg["CONFIG_PAX"] == "y" and cfg["CONFIG_PAX_MPROTECT_COMPAT"] is None
    assert cfg["CONFIG_PAX_RANDMMAP"] == "y"       # other PaX options that are set
    assert "CONFIG_GRKERNSEC_PROC_GID" not in cfg and "CONFIG_LOCALVERSION" not in cfg
    assert cfg["CONFIG_GRKERNSEC"] is None and cfg["CONFIG_SECURITY_SELINUX"] == "y"


def test_cpuinfo_nx():
    assert p.parse_cpuinfo_nx("processor\t: 0\nflags\t\t: fpu vme nx lm\n") is True
    assert p.parse_cpuinfo_nx("processor\t: 0\nflags\t\t: fpu vme pae\n") is False
    assert p.parse_cpuinfo_nx("processor\t: 0\nFeatures\t: fp asimd evtstrm\n") is None


def test_wxmap_status_and_misc():
    assert p.decode_wxmap_status(0x80000001) == {"value": "0x80000001", "permit": True,
                                                 "disallow_exec": False, "wxorx_enforce": True}
    assert p.parse_environ(b"TMPDIR=/var/tmp\0X=a=b\0bad\0") == {"TMPDIR": "/var/tmp", "X": "a=b"}
    assert p.parse_getfattr('# file: usr/bin/python3.6\nuser.pax.flags="em"\n') == {
        "usr/bin/python3.6": {"user.pax.flags": "em"}}
    assert p.uname_os("FreeBSD 14.1-RELEASE amd64") == "freebsd" and p.uname_os("") is None
    assert p.parse_personality("00400000\n") == 0x400000 and p.parse_personality("zz") is None


# --- junk never raises ----------------------------------------------------------------------

TEXT_PARSERS = [parse_status, mk.parse_pax_line, mk.parse_pax_xattr, p.parse_mountinfo,
                p.parse_bsd_mount, p.parse_kv, p.parse_kernel_config, p.parse_cpuinfo_nx,
                p.parse_getfattr, p.parse_environ, p.parse_selinux_bool, p.parse_context,
                p.parse_personality, p.uname_os]


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_text_parsers_never_raise(text):
    for parser in TEXT_PARSERS:
        parser(text)
    p.mount_for(p.parse_mountinfo(text) + p.parse_bsd_mount(text), "/tmp")


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400))
def test_elf_parser_raises_only_elf_errors(data):
    for blob in (data, b"\x7fELF\x02\x01\x01" + data, b"\x7fELF\x01\x02\x01" + data):
        try:
            mk.elf_markings(mk.parse_elf(blob))
            mk.unmark_elf(blob)
        except mk.ELFError:
            pass
