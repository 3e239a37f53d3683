"""The detectors on this machine's real kernel, with and without real confinement.

Each confined case is a child process that applies the confinement (tests/helpers/confine.py:
PR_SET_MDWE, a libseccomp filter, a private mount namespace) and prints detect() as
JSON; nothing is mocked. A kernel without the feature makes _confine exit 77: skip.
"""

import json
import os
import shutil
import struct
import subprocess
import sys

import pytest
import yaml

from probe.mechanisms import detect
from probe.policy import discard_unmarked, unmarked_interpreter
from probe.policy import markings as _markings
from probe.mechanisms import DETECTORS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFINE = os.path.join(ROOT, "tests", "helpers", "confine.py")
UNAVAILABLE = 77
DETECT = "import json, probe.mechanisms as p; print(json.dumps(p.detect()))"


def env(**extra):
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(x for x in (ROOT, e.get("PYTHONPATH")) if x)
    e.update(extra)
    return e


def child(code, confine=(), extra_env=None, prefix=()):
    cmd = list(prefix) + [sys.executable, "-c", code]
    if confine:
        cmd = list(prefix) + [sys.executable, CONFINE] + list(confine) + ["--", sys.executable, "-c", code]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env(**(extra_env or {})),
                          cwd=ROOT, timeout=60)
    if proc.returncode == UNAVAILABLE:
        pytest.skip(proc.stderr.strip())
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def detect_in(confine=(), extra_env=None, prefix=()):
    return json.loads(child(DETECT, confine, extra_env, prefix))


def status_text():
    with open("/proc/self/status") as f:
        return f.read()


# --- the plain host ------------------------------------------------------------------------

def test_plain_host_matches_independent_sources():
    got = detect()
    assert list(got) == [d.name for d in DETECTORS if d.applies("linux") is None]
    status = status_text()
    assert got["pax"]["state"] == ("absent" if "\nPaX:" not in status else got["pax"]["state"])
    from probe.platform import linux as _linux  # the engine's own reader of the same facts
    info = _linux.process_info()
    assert got["seccomp"]["mode"] == info["seccomp_mode"]
    assert got["seccomp"]["no_new_privs"] == info["no_new_privs"]
    assert got["mdwe"]["value"] == info["mdwe"]
    assert got["personality"]["read_implies_exec"] == info["read_implies_exec"]
    assert got["cpu_nx"]["state"] == {True: "on", False: "off", None: "unknown"}[_linux.cpu_nx("x86_64")] \
        or os.uname().machine != "x86_64"
    assert (got["selinux"]["state"] == "disabled") == (not os.path.exists("/sys/fs/selinux/enforce"))
    memfd = "/proc/sys/vm/memfd_noexec"
    assert (got["memfd_noexec"]["state"] == "absent") == (not os.path.exists(memfd))
    for name, result in got.items():
        assert result["state"] != "unknown" or result.get("reason"), name
    from helpers.schemas import policies_schema
    from probe.report import validator as _schema
    assert _schema.validate(got, policies_schema()) == []
    assert _schema.validate(detect(include_inapplicable=True), policies_schema()) == []


def test_tmpdir_decides_the_file_probes_directory(tmp_path):
    got = detect(env={"TMPDIR": str(tmp_path)})
    entry = got["noexec_mounts"]["paths"]["tmpdir"]
    assert entry["path"] == str(tmp_path)
    assert entry["noexec"] is False
    assert detect(env={})["noexec_mounts"]["paths"]["tmpdir"]["path"] == "/tmp"


# --- under real confinement ---------------------------------------------------------------------

def test_mdwe_prctl_is_seen():
    got = detect_in(["--mdwe"])
    assert got["mdwe"] == {"state": "on", "value": 1, "refuse_exec_gain": True, "no_inherit": False}
    assert detect_in()["mdwe"]["state"] == "off"


def test_seccomp_filter_is_seen():
    got = detect_in(["--seccomp", "errno"])
    assert got["seccomp"]["state"] == "filter" and got["seccomp"]["mode"] == 2
    assert got["seccomp"]["filters"] >= 1 and got["seccomp"]["no_new_privs"] is True
    assert got["mdwe"]["state"] == "off"


def test_noexec_dev_shm_in_a_mount_namespace_is_seen():
    got = detect_in(["--noexec-shm"], extra_env={"TMPDIR": "/dev/shm"})
    mounts = got["noexec_mounts"]
    assert mounts["state"] == "on"
    assert mounts["paths"]["shm"]["noexec"] is True and mounts["paths"]["shm"]["mount_point"] == "/dev/shm"
    assert mounts["paths"]["tmpdir"]["noexec"] is True and mounts["paths"]["tmpdir"]["path"] == "/dev/shm"
    # the host itself is untouched
    assert detect()["noexec_mounts"]["paths"]["shm"]["noexec"] is False


def test_read_implies_exec_personality_is_seen():
    code = ("import ctypes, json, probe.mechanisms as p\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "libc.personality.argtypes = [ctypes.c_ulong]\n"
            "cur = libc.personality(0xffffffff)\n"
            "assert libc.personality(cur | 0x0400000) != -1\n"
            "print(json.dumps(p.detect()))\n")
    got = json.loads(child(code))
    assert got["personality"]["state"] == "on"
    assert got["personality"]["read_implies_exec"] is True
    assert int(got["personality"]["value"], 16) & 0x0400000


def test_memfd_noexec_in_a_private_pid_namespace_is_seen():
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1)")
    code = ("import json, probe.mechanisms as p\n"
            "open('/proc/sys/vm/memfd_noexec', 'w').write('2')\n"
            "print(json.dumps(p.detect()['memfd_noexec']))\n")
    if not os.path.exists("/proc/sys/vm/memfd_noexec"):
        pytest.skip("vm.memfd_noexec needs Linux >= 6.3")
    proc = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", code],
                          capture_output=True, text=True, env=env(), cwd=ROOT, timeout=60)
    if proc.returncode != 0 and ("Operation not permitted" in proc.stderr or "unshare failed" in proc.stderr):
        pytest.skip("cannot create a pid namespace: %s" % proc.stderr.strip())
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"state": "enforcing", "value": 2}
    assert detect()["memfd_noexec"]["value"] != 2 or pytest.fail("the host's value changed")


# --- never an exception -----------------------------------------------------------------------------

def test_unreadable_sources_give_unknown_with_reason(tmp_path):
    # Directories where files belong: every open() fails with an OSError other than ENOENT.
    for rel in ("proc/self/status", "proc/self/mountinfo", "proc/self/personality", "proc/cpuinfo",
                "proc/sys/vm/memfd_noexec", "sys/fs/selinux/enforce", "proc/config.gz", "calls.txt"):
        (tmp_path / rel).mkdir(parents=True)
    (tmp_path / "uname.txt").write_text("Linux 6.1.0 x86_64\n")
    got = detect(root=str(tmp_path))
    for name in ("cpu_nx", "pax", "seccomp", "personality", "memfd_noexec", "noexec_mounts",
                 "selinux", "mdwe"):
        assert got[name]["state"] == "unknown", (name, got[name])
        assert got[name]["reason"], name
    assert "cannot read /proc/self/status" in got["pax"]["reason"]


def test_a_broken_detector_does_not_sink_the_others(monkeypatch):
    victim = next(d for d in DETECTORS if d.name == "selinux")

    def boom(src):
        raise RuntimeError("simulated bug")
    monkeypatch.setattr(victim, "read", boom)
    got = detect()
    assert got["selinux"]["state"] == "unknown" and "simulated bug" in got["selinux"]["reason"]
    assert got["seccomp"]["state"] != "unknown"


def test_inapplicable_detectors_say_why():
    got = detect(include_inapplicable=True)
    assert got["openbsd_wx"]["state"] == "not_applicable" and "openbsd" in got["openbsd_wx"]["reason"]
    assert "freebsd_wx" not in detect()


# --- capture-fixture ---------------------------------------------------------------------------

def test_capture_fixture_reproduces_the_live_detectors(tmp_path):
    target = tmp_path / "linux-this-host"
    proc = subprocess.run([sys.executable, "-m", "probe", "capture-fixture", str(target),
                           "--description", "the test machine"],
                          capture_output=True, text=True, env=env(), cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "does not reproduce" not in proc.stderr, proc.stderr
    with open(target / "expected.yaml") as f:
        spec = yaml.safe_load(f)
    assert spec["os"] == "linux" and spec["description"] == "the test machine"
    assert spec["detectors"] == detect(root=str(target)) == detect()
    environ = (target / "proc/self/environ").read_bytes()
    assert all(item.split(b"=")[0] in (b"TMPDIR", b"TEMP", b"TMP") for item in environ.split(b"\0") if item)
    again = subprocess.run([sys.executable, "-m", "probe", "capture-fixture", str(target)],
                           capture_output=True, text=True, env=env(), cwd=ROOT, timeout=60)
    assert again.returncode == 1 and "exists" in again.stderr


# --- an unmarked interpreter copy ----------------------------------------------------------------

def _mark(path, xattr):
    """What hardened Gentoo's pax-mark does: PT_PAX_FLAGS via `paxctl -c -m`, plus the xattr."""
    with open(path, "r+b") as f:
        data = bytearray(f.read(65536))
        elf = _markings.parse_elf(bytes(data))
        e = "<" if elf["endian"] == "little" else ">"
        stack = [ph for ph in elf["phdrs"] if ph["type"] == _markings.PT_GNU_STACK]
        if not stack:
            pytest.skip("the interpreter has no PT_GNU_STACK to convert")
        struct.pack_into(e + "I", data, stack[0]["entry_offset"], _markings.PT_PAX_FLAGS)
        struct.pack_into(e + "I", data, stack[0]["flags_offset"], 0x200)   # PF_NOMPROTECT
        f.seek(0)
        f.write(data)
    try:
        os.setxattr(path, "user.pax.flags", xattr.encode())
    except OSError as exc:
        pytest.skip("no user xattrs on %s: %s" % (path, exc.strerror))


def test_unmarked_copy_of_a_marked_interpreter(tmp_path):
    exe = os.path.realpath(sys.executable)
    marked = tmp_path / "marked" / os.path.basename(exe)
    marked.parent.mkdir()
    shutil.copyfile(exe, marked)
    os.chmod(marked, 0o755)
    _mark(str(marked), "em")
    info = unmarked_interpreter(executable=str(marked), directory=str(tmp_path))
    try:
        assert info["reason"] is None, info
        assert info["markings"]["source"] == "xattr" and info["markings"]["xattr"] == "em"
        assert info["markings"]["exempt"] == ["emutramp", "mprotect"]
        copy = info["path"]
        with pytest.raises(OSError):
            os.getxattr(copy, "user.pax.flags")
        with open(copy, "rb") as f:
            elf = _markings.parse_elf(f.read(65536))
        assert _markings.elf_markings(elf)["pt_pax_flags"] is None
        assert any(ph["type"] == _markings.PT_GNU_STACK for ph in elf["phdrs"])
        run_env = env(**info["env"])
        proc = subprocess.run([copy, "-c", DETECT], capture_output=True, text=True, env=run_env,
                              cwd=ROOT, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["pax"]["state"] == detect()["pax"]["state"]
    finally:
        discard_unmarked(info)
    assert not os.path.exists(info["dir"])


def test_unmarked_interpreter_is_not_needed_for_an_unmarked_one():
    info = unmarked_interpreter()
    if info["markings"]["source"] is not None:
        pytest.skip("this interpreter is PaX-marked")
    assert info["path"] is None and "no PaX markings" in info["reason"]


def test_unmarked_copy_refuses_a_noexec_directory():
    code = ("import json, probe.policy as p\n"
            "info = p.unmarked_interpreter(force=True, directory='/dev/shm')\n"
            "p.discard_unmarked(info)\n"
            "print(json.dumps(info))\n")
    info = json.loads(child(code, ["--noexec-shm"]))
    assert info["path"] is None and "noexec" in info["reason"]
