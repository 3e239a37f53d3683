"""The engine's Linux readers, pointed at fixture trees through their one root."""

import pytest

from probe.platform import linux as _linux
from probe import platform as _platform

pytestmark = pytest.mark.skipif(not _platform.LINUX, reason="Linux readers")


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setattr(_linux, "ROOT", str(tmp_path))
    (tmp_path / "etc").mkdir()
    return tmp_path


def test_distribution_from_os_release(root):
    (root / "etc" / "os-release").write_text(
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
        'VERSION_ID="12"\nVERSION="12 (bookworm)"\nID=debian\n')
    assert _linux.distribution() == {"id": "debian", "name": "Debian GNU/Linux", "version": "12"}


def test_distribution_without_version_id_uses_the_codename(root):
    (root / "etc" / "os-release").write_text(
        'PRETTY_NAME="Debian GNU/Linux forky/sid"\nNAME="Debian GNU/Linux"\n'
        'VERSION_CODENAME=forky\nID=debian\n')
    assert _linux.distribution()["version"] == "forky"


def test_distribution_missing_is_unknown_not_an_error(root):
    assert _linux.distribution() == {"id": None, "name": None, "version": None}


def test_cpu_nx_flag(root):
    (root / "proc").mkdir()
    (root / "proc" / "cpuinfo").write_text("processor\t: 0\nflags\t\t: fpu vme pae nx sse\n")
    assert _linux.cpu_nx("x86_64") is True
    (root / "proc" / "cpuinfo").write_text("processor\t: 0\nflags\t\t: fpu vme pae sse\n")
    assert _linux.cpu_nx("i386") is False
    assert _linux.cpu_nx("aarch64") is None          # no such flag outside x86


def test_parse_status_and_maps_line():
    status = _linux.parse_status("Name:\tpython3\nSeccomp:\t2\nSeccomp_filters:\t1\nNoNewPrivs:\t1\n")
    assert (status["Seccomp"], status["NoNewPrivs"]) == ("2", "1")
    line = "7fff4c5c6000-7fff4c5e7000 rw-p 00000000 00:00 0                          [stack]\n"
    assert _linux.parse_maps_line(line) == (0x7fff4c5c6000, 0x7fff4c5e7000, "rw-p", "[stack]")
    assert _linux.parse_maps_line("55d0-55d1 r-xp 00000000 00:00 0\n")[3] == ""


def test_a_native_interpreter_restarts_as_itself():
    import os
    import sys
    if os.path.realpath("/proc/self/exe") != os.path.realpath(sys.executable):
        pytest.skip("this interpreter was started through a loader or an emulator (tests/test_cross.py)")
    assert _linux.emulator() is None
    assert _linux.interpreter_command() == [sys.executable]


@pytest.mark.parametrize("procmap_query", [None, False], ids=["ioctl-or-text", "text"])
def test_mapping_read_back_follows_each_change(monkeypatch, procmap_query):
    # PROCMAP_QUERY where the kernel has it, else the maps text; both must see each
    # mprotect as it happens (the text is rendered afresh: qemu-user renders it at open).
    from probe.platform import libc as _libc
    monkeypatch.setattr(_linux, "_procmap_query_works", procmap_query)
    addr = _libc.mmap_(_libc.PAGESIZE, _libc.RX, _libc.MAP_PRIVATE | _libc.MAP_ANONYMOUS)
    try:
        assert _linux.mapping_perms(addr) == "r-xp"
        _libc.mprotect(addr, _libc.PAGESIZE, _libc.PROT_READ)
        assert _linux.mapping_perms(addr) == "r--p"
    finally:
        _libc.munmap(addr, _libc.PAGESIZE)
    assert _linux.mapping_perms(addr) is None
