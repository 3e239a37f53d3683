"""memprobe on real Debian kernels booted under QEMU (TCG): systemd's
MemoryDenyWriteExecute= through seccomp (systemd 252) and PR_SET_MDWE (systemd 257),
SELinux enforcing with Debian's reference policy, kernels 5.10 and 7.x, and
vm.memfd_noexec=2 set for real.

Each boot (tools/guest/cases.py) runs several memprobe invocations and costs 40-90 s
of emulation, so the tests of one boot share it. Driven by `tox -e vm`, which builds
the images (tools/guest/rig.py setup) and sets MEMPROBE_GUEST_TESTS; elsewhere every
test here skips.
"""

import importlib.util
import json
import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP_REASON = ("guest kernels boot only under `tox -e vm` (tools/guest/rig.py: root, "
               "qemu-system-x86, several minutes of emulation)")
pytestmark = pytest.mark.skipif(not os.environ.get("MEMPROBE_GUEST_TESTS"), reason=SKIP_REASON)


def _load_rig():
    sys.path.insert(0, os.path.join(ROOT, "tools", "guest"))
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    spec = importlib.util.spec_from_file_location("memprobe_guest_rig",
                                                  os.path.join(ROOT, "tools", "guest", "rig.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rig = _load_rig() if os.environ.get("MEMPROBE_GUEST_TESTS") else None


class Booted:
    """One boot's results: reports by step name, the job's own records."""

    def __init__(self, result):
        self.result = result

    def text(self, name):
        value = self.result.text(name)
        assert value is not None, "%s missing; job output:\n%s" % (name, self.result.output[-3000:])
        return value.strip()

    def report(self, step):
        rc = self.text(step + ".rc")
        assert rc == "0", "%s exited %s: %s" % (step, rc, self.text(step + ".err")[-2000:])
        return yaml.safe_load(self.text(step + ".yaml"))


@pytest.fixture(scope="module")
def boots():
    done = {}
    r = rig.Rig()

    def get(name):
        if name not in done:
            # Inside tox -e vm the images were just built: a missing one is a failure.
            assert r.ready(name), "image for %s is not built (rig.py setup)" % name
            result = r.boot(name)
            assert result.status == 0, result.output[-4000:]
            done[name] = Booted(result)
        return done[name]
    return get


def outcome(report, probe):
    got = report["probes"][probe]
    return got["outcome"], got.get("errno_name")


def mechanisms(report, probe):
    return [(a["mechanism"], a["confidence"]) for a in report["probes"][probe].get("attribution") or []]


def evidence(report, probe):
    return " | ".join(e for a in report["probes"][probe].get("attribution") or [] for e in a["evidence"])


def verdicts(report):
    return {pid: outcome(report, pid) for pid in report["probes"]}


def no_errors(report):
    return [pid for pid, p in report["probes"].items() if p["outcome"] in ("error", "unknown")]


# --- systemd's MemoryDenyWriteExecute= on its two implementations --------------------

def test_bookworm_systemd_252_mdwe_is_a_seccomp_filter_with_eperm(boots):
    b = boots("bookworm")
    assert b.text("kernel").startswith("6.1.") and b.text("systemd") == "252"
    plain, rep = b.report("plain"), b.report("mdwe")
    assert outcome(plain, "flip_rw_rx") == ("allowed", None)
    assert rep["policies"]["seccomp"]["state"] == "filter" and rep["policies"]["seccomp"]["mode"] == 2
    for pid in ("flip_rw_rx", "map_rwx", "flip_rw_rwx", "mprotect_rx_noop", "repatch_rx", "patch_rwx"):
        assert outcome(rep, pid) == ("denied", "EPERM"), pid
    assert outcome(rep, "map_rx") == ("allowed", None)
    assert mechanisms(rep, "flip_rw_rx") == [("seccomp", "likely")]
    filters = rep["policies"]["seccomp"]["filters"]
    assert "Seccomp: 2 in /proc/self/status (%d filters attached)" % filters in evidence(rep, "flip_rw_rx")
    assert rep["policies"]["mdwe"]["state"] == "unsupported"      # 6.1 predates PR_SET_MDWE
    assert rep["strategies"]["dual_mapping"]["variants"]["memfd"] == "works"
    assert rep["recommendation"].startswith("Use double mapping through memfd_create")
    assert "MemoryDenyWriteExecute=yes" in rep["host"]["provenance"]["note"]
    assert rep["host"]["provenance"]["method"] == "qemu-system"


def test_trixie_systemd_257_mdwe_is_pr_set_mdwe_with_eacces(boots):
    b = boots("trixie")
    assert b.text("kernel").startswith("6.12.") and b.text("systemd") == "257"
    rep = b.report("mdwe")
    assert rep["policies"]["seccomp"]["mode"] == 0            # Seccomp: 0
    assert rep["policies"]["mdwe"]["state"] == "on" and rep["policies"]["mdwe"]["value"] == 1
    for pid in ("flip_rw_rx", "map_rwx", "flip_rw_rwx", "repatch_rx", "patch_rwx"):
        assert outcome(rep, pid) == ("denied", "EACCES"), pid
        assert mechanisms(rep, pid) == [("mdwe", "confirmed")], pid
    assert outcome(rep, "mprotect_rx_noop") == ("allowed", None)
    assert outcome(rep, "map_rx") == ("allowed", None)
    assert rep["strategies"]["dual_mapping"]["variants"]["memfd"] == "works"
    assert rep["recommendation"].startswith("Use double mapping through memfd_create")


@pytest.mark.parametrize("name", ["bookworm", "trixie"])
def test_hardened_service_set_gives_the_verdicts_of_mdwe_alone(boots, name):
    b = boots(name)
    mdwe, hardened = b.report("mdwe"), b.report("hardened")
    assert verdicts(hardened) == verdicts(mdwe)
    assert hardened["recommendation"] == mdwe["recommendation"]
    assert hardened["process"]["no_new_privs"] is True
    assert not no_errors(hardened)


# --- a kernel before PR_SET_MDWE and vm.memfd_noexec (6.3) ---------------------------

def test_kernel_5_10_reads_unsupported_and_absent_and_systemd_falls_back_to_seccomp(boots):
    b = boots("bookworm-5.10")
    assert b.text("kernel").startswith("5.10.")
    for step in ("plain", "mdwe"):
        rep = b.report(step)
        assert rep["policies"]["mdwe"]["state"] == "unsupported", step
        assert rep["policies"]["memfd_noexec"]["state"] == "absent", step
        assert not [k for k, v in rep["policies"].items() if v.get("state") in ("error", "unknown")]
        assert not no_errors(rep), step
    assert outcome(b.report("plain"), "flip_rw_rx") == ("allowed", None)
    rep = b.report("mdwe")
    assert outcome(rep, "flip_rw_rx") == ("denied", "EPERM")
    assert outcome(rep, "mprotect_rx_noop") == ("denied", "EPERM")
    assert mechanisms(rep, "flip_rw_rx") == [("seccomp", "likely")]
    assert rep["recommendation"].startswith("Use double mapping through memfd_create")


# --- SELinux enforcing, Debian's reference policy ------------------------------------

# Where flipping is refused, the repatching probes map their live code from a memfd. Whether
# that code may be made executable again after a write is SELinux's execmod permission on the
# memfd's type, which the policy grants to initrc_t and refuses to unconfined_t.
@pytest.mark.parametrize("step,domain,repatch", [
    ("selinux-initrc-off", "initrc_t", ("allowed", None)),
    ("selinux-unconfined-off", "unconfined_t", ("denied", "EACCES"))])
def test_selinux_execmem_denied_is_attributed_with_debians_boolean(boots, step, domain, repatch):
    b = boots("bookworm-selinux")
    assert b.text("selinux") == "Enforcing"
    rep = b.report(step)
    sel = rep["policies"]["selinux"]
    assert sel["state"] == "enforcing" and ":%s:" % domain in sel["context"]
    assert sel["booleans"]["allow_execmem"] is False and "deny_execmem" not in sel["booleans"]
    assert outcome(rep, "map_rx") == ("denied", "EACCES")
    assert mechanisms(rep, "map_rx") == [("selinux-execmem", "confirmed")]
    assert "the allow_execmem boolean is off" in evidence(rep, "map_rx")
    for pid in ("flip_rw_rx", "map_rwx", "patch_rwx"):
        assert outcome(rep, pid) == ("denied", "EACCES"), pid
        assert ("selinux-execmem", "confirmed") in mechanisms(rep, pid), pid
    assert rep["probes"]["repatch_rx"]["live_code"] == "memfd"
    assert outcome(rep, "repatch_rx") == repatch
    if repatch[0] == "denied":
        assert rep["probes"]["repatch_rx"]["step"] == "mprotect_rx_again"
        assert mechanisms(rep, "repatch_rx")[0][0] == "selinux-execmod"
    assert outcome(rep, "patch_file_text") == ("denied", "EACCES")
    assert mechanisms(rep, "patch_file_text")[0][0] == "selinux-execmod"
    assert rep["strategies"]["dual_mapping"]["variants"]["memfd"] == "works"
    assert rep["recommendation"].startswith("Use double mapping through memfd_create")


@pytest.mark.parametrize("domain", ["initrc", "unconfined"])
def test_selinux_allow_execmem_on_leaves_execheap_execstack_execmod_to_their_booleans(boots, domain):
    rep = boots("bookworm-selinux").report("selinux-%s-execmem" % domain)
    assert rep["policies"]["selinux"]["booleans"]["allow_execmem"] is True
    for pid in ("map_rx", "flip_rw_rx", "map_rwx", "repatch_rx", "patch_rwx", "dual_map_memfd"):
        assert outcome(rep, pid) == ("allowed", None), pid
    for pid, mech in (("flip_heap", "execheap"), ("flip_stack", "execstack"),
                      ("patch_file_text", "execmod")):
        assert outcome(rep, pid) == ("denied", "EACCES"), pid
        assert mechanisms(rep, pid) == [("selinux-" + mech, "confirmed")], pid
        assert "the allow_%s boolean is off" % mech in evidence(rep, pid)
    assert rep["recommendation"].startswith("Use W^X flipping")


@pytest.mark.parametrize("domain", ["initrc", "unconfined"])
def test_selinux_with_every_exec_boolean_on_allows_what_an_unconfined_host_does(boots, domain):
    rep = boots("bookworm-selinux").report("selinux-%s-all" % domain)
    assert all(rep["policies"]["selinux"]["booleans"][n] is True
               for n in ("allow_execmem", "allow_execheap", "allow_execstack", "allow_execmod"))
    assert verdicts(rep) == verdicts(boots("bookworm").report("plain"))


# --- memprobe run --like-unit, against a unit installed in the guest -------------------

@pytest.mark.parametrize("name", ["bookworm", "trixie"])
def test_like_unit_copies_the_units_sandbox_and_records_it(boots, name):
    b = boots(name)
    rep = b.report("like-unit")
    like = rep["process"]["like_unit"]
    assert like["unit"] == "memprobe-demo.service"
    props = like["properties"]
    for key, value in (("MemoryDenyWriteExecute", "yes"), ("NoNewPrivileges", "yes"), ("User", "nobody"),
                       ("PrivateTmp", "yes"), ("ProtectSystem", "strict"), ("LockPersonality", "yes"),
                       ("RestrictRealtime", "yes"), ("PrivateDevices", "yes")):
        assert props.get(key) == value, key
    assert "mprotect" in props["SystemCallFilter"].split()          # @system-service, expanded
    assert rep["process"]["uid"] == 65534 and rep["process"]["no_new_privs"] is True
    # The unit's MemoryDenyWriteExecute= gives the verdicts of the hand-written transient
    # unit; LockPersonality=yes adds one: personality(READ_IMPLIES_EXEC) is refused (EPERM).
    expected = verdicts(b.report("hardened"))
    expected["read_implies_exec"] = ("denied", "EPERM")
    assert verdicts(rep) == expected
    assert rep["probes"]["read_implies_exec"]["step"] == "personality"
    assert mechanisms(rep, "read_implies_exec") == [("seccomp", "likely")]
    assert rep["recommendation"] == b.report("mdwe")["recommendation"]


@pytest.mark.parametrize("name", ["bookworm", "trixie"])
def test_like_unit_of_a_missing_unit_is_one_line_and_exit_1(boots, name):
    b = boots(name)
    assert b.text("like-unit-missing.rc") == "1"
    assert b.text("like-unit-missing.yaml") == ""
    assert b.text("like-unit-missing.err") == ("memprobe: error: --like-unit: no unit "
                                               "memprobe-no-such.service (systemctl show: "
                                               "LoadState=not-found)")


@pytest.mark.parametrize("name", ["bookworm", "trixie"])
def test_systemd_run_finds_a_bare_command_only_on_the_callers_path(boots, name):
    # What the README says about a virtualenv install: name it by its absolute path.
    b = boots(name)
    assert b.text("path-bare.rc") != "0"
    assert "Failed to find executable memprobe-in-venv" in b.text("path-bare.err")
    assert b.text("path-absolute.rc") == "0"
    assert "flip_rw_rx" in b.text("path-absolute.out")


# --- vm.memfd_noexec=2, a real sysctl ---------------------------------------------------

def test_memfd_noexec_2_is_detected_and_leaves_memfd_double_mapping_working(boots):
    b = boots("trixie")
    plain, rep = b.report("plain"), b.report("memfd-noexec-2")
    assert plain["policies"]["memfd_noexec"] == {"state": "off", "value": 0}
    assert rep["policies"]["memfd_noexec"]["state"] == "enforcing"
    assert rep["policies"]["memfd_noexec"]["value"] == 2
    # The sysctl governs execve() of memfds and memfd_create(MFD_EXEC); mapping a memfd
    # (made without MFD_EXEC) RX still works, so nothing is refused or attributed to it.
    assert outcome(rep, "dual_map_memfd") == ("allowed", None)
    assert verdicts(rep) == verdicts(plain)
    assert not [pid for pid in rep["probes"] if ("memfd-noexec", "confirmed") in mechanisms(rep, pid)]
    assert rep["strategies"]["dual_mapping"]["variants"]["memfd"] == "works"
    assert rep["recommendation"] == plain["recommendation"]


# --- the newest 7.x kernel against this host -----------------------------------------

HOST_POLICIES = ("cpu_nx", "pax", "seccomp", "mdwe", "personality", "memfd_noexec")


def test_kernel_7_plain_run_agrees_with_this_hosts_plain_run(boots):
    b = boots("trixie-7")
    assert b.text("kernel").startswith("7.")
    guest = b.report("plain")
    proc = subprocess.run([sys.executable, "-m", "probe", "run", "--format", "json", "--output", "-"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    host = json.loads(proc.stdout)
    assert guest["host"]["kernel_release"] != host["host"]["kernel_release"]
    assert verdicts(guest) == verdicts(host)
    assert {k: v["verdict"] for k, v in guest["strategies"].items()} == \
        {k: v["verdict"] for k, v in host["strategies"].items()}
    assert guest["recommendation"] == host["recommendation"]
    for name in HOST_POLICIES:
        assert guest["policies"][name]["state"] == host["policies"][name]["state"], name
    assert not no_errors(guest)


# --- the rig itself ----------------------------------------------------------------------

def _qemu_processes_of(cache):
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"qemu-system-x86_64") and any(cache.encode() in a for a in argv):
            found.append(int(pid))
    return found


def test_a_guest_that_overruns_its_timeout_is_killed_and_reported():
    r = rig.Rig()
    assert r.ready("bookworm-5.10")
    with pytest.raises(rig.RigError, match="did not finish within 3s"):
        r.boot("bookworm-5.10", timeout=3)
    assert _qemu_processes_of(r.cache) == []
    assert os.listdir(os.path.join(r.cache, "work")) == []
