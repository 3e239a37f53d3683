"""Attribution, strategy verdicts and the recommendation.

Unit tests on synthetic reports (one rule at a time), then the real reports the engine
writes under real MDWE, seccomp and a noexec /dev/shm (tests/conftest.py), with the
policies detected under the same confinement.
"""

import copy
import os

import pytest
from hypothesis import given, settings, strategies as st

from probe.attribution import attribute as _attribution
from probe.report import validator as _schema
from probe.attribution.attribute import MECHANISMS, attribute

from helpers.policy_samples import STEPS, expand

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def report(probes, policies=None, os_name="linux", cpu_nx=True, process=None):
    r = {"host": {"os": os_name, "cpu_nx": cpu_nx}, "process": process or {},
         "probes": {pid: expand(pid, short) for pid, short in probes.items()}}
    if policies is not None:
        r["policies"] = policies
    return r


def att(r, pid):
    return [(a["mechanism"], a["confidence"]) for a in r["probes"][pid].get("attribution", ())]


def evidence(r, pid):
    return " | ".join(e for a in r["probes"][pid]["attribution"] for e in a["evidence"])


LINUX_PLAIN = {"cpu_nx": {"state": "on"}, "pax": {"state": "absent"}, "selinux": {"state": "disabled"},
               "seccomp": {"state": "disabled", "mode": 0, "filters": 0},
               "mdwe": {"state": "off", "value": 0}, "memfd_noexec": {"state": "off", "value": 0},
               "noexec_mounts": {"state": "off", "paths": {
                   "shm": {"path": "/dev/shm", "mount_point": "/dev/shm", "fstype": "tmpfs", "noexec": False},
                   "tmpdir": {"path": "/tmp", "mount_point": "/", "fstype": "ext4", "noexec": False}}}}


def policies(**changes):
    p = copy.deepcopy(LINUX_PLAIN)
    p.update(changes)
    return p


PAX_ON = {"state": "on", "status_line": "PeMRs", "mprotect_effective": True,
          "flags": {"pageexec": True, "emutramp": False, "mprotect": True, "randmmap": True, "segmexec": False},
          "markings": {"source": None}}


# --- one rule at a time --------------------------------------------------------------------------

def test_mdwe_confirmed_by_prctl_and_not_blamed_for_what_it_allows():
    r = report({"flip_rw_rx": "denied mprotect_rx EACCES", "map_rwx": "denied mmap_rwx EACCES",
                "map_rx": "allowed", "repatch_rx": "denied mprotect_rw EACCES"},
               policies(mdwe={"state": "on", "value": 1}))
    attribute(r)
    assert att(r, "flip_rw_rx") == [("mdwe", "confirmed")]
    assert att(r, "map_rwx") == [("mdwe", "confirmed")]
    assert "PR_GET_MDWE) = 1" in evidence(r, "flip_rw_rx")
    # MDWE allows RX->RW: that refusal is not MDWE, and nothing detected explains it
    assert att(r, "repatch_rx") == [("unknown", "unknown")]
    assert "not mdwe" not in evidence(r, "repatch_rx")   # never a candidate: its rules exclude RX->RW


def test_report_alone_without_policies_uses_the_process_section():
    r = report({"flip_rw_rx": "denied mprotect_rx EACCES"}, None, process={"mdwe": 1})
    attribute(r)
    assert att(r, "flip_rw_rx")[0] == ("mdwe", "confirmed")
    # the others that could return EACCES here stay possible, but only `likely`
    assert {c for _, c in att(r, "flip_rw_rx")[1:]} <= {"likely"}


def test_pax_mprotect_refuses_rx_to_rw_too():
    r = report({"repatch_rx": "denied mprotect_rw EACCES", "map_rwx": "denied mmap_rwx EPERM",
                "exec_rw": "killed call SIGKILL"}, policies(pax=PAX_ON))
    attribute(r)
    assert att(r, "repatch_rx") == [("pax-mprotect", "confirmed")]
    assert att(r, "map_rwx") == [("pax-mprotect", "confirmed")]
    assert att(r, "exec_rw") == [("pax-pageexec", "confirmed")]
    off = dict(PAX_ON, status_line="PemRs", mprotect_effective=False,
               flags=dict(PAX_ON["flags"], mprotect=False))
    r = report({"repatch_rx": "denied mprotect_rw EACCES"}, policies(pax=off))
    attribute(r)
    assert att(r, "repatch_rx") == [("unknown", "unknown")]
    assert "MPROTECT is off" in evidence(r, "repatch_rx")


def test_sigkill_without_pax_is_not_pageexec():
    r = report({"exec_rw": "killed call SIGKILL"}, policies())
    attribute(r)
    assert att(r, "exec_rw") == [("unknown", "unknown")]


def test_anonymous_rx_mmap_refused_is_selinux_execmem():
    sel = {"state": "enforcing", "context": "unconfined_u:unconfined_r:unconfined_t:s0", "booleans": {}}
    r = report({"map_rx": "denied mmap_rx EACCES", "flip_rw_rx": "denied mprotect_rx EACCES"},
               policies(selinux=sel))
    attribute(r)
    assert att(r, "map_rx") == [("selinux-execmem", "confirmed")]
    assert att(r, "flip_rw_rx") == [("selinux-execmem", "confirmed")]
    assert "map_rx" in evidence(r, "flip_rw_rx")
    r = report({"map_rx": "denied mmap_rx EACCES"}, policies())
    attribute(r)
    assert att(r, "map_rx") == [("unknown", "unknown")]
    assert "SELinux is disabled" in evidence(r, "map_rx")


def test_execmem_ruled_out_when_an_anonymous_rx_mmap_works():
    sel = {"state": "enforcing", "context": "x", "booleans": {"deny_execmem": False}}
    r = report({"map_rx": "allowed", "flip_rw_rx": "denied mprotect_rx EACCES"},
               policies(selinux=sel, mdwe={"state": "on", "value": 1}))
    attribute(r)
    assert att(r, "flip_rw_rx") == [("mdwe", "confirmed")]


def test_execheap_and_execstack_are_told_apart():
    sel = {"state": "enforcing", "context": "x",
           "booleans": {"selinuxuser_execheap": False, "selinuxuser_execstack": True}}
    r = report({"map_rx": "allowed", "flip_heap": "denied mprotect_rwx EACCES",
                "flip_stack": "denied mprotect_rwx EACCES", "patch_file_text": "denied mprotect_rx_again EACCES"},
               policies(selinux=sel))
    attribute(r)
    assert att(r, "flip_heap") == [("selinux-execheap", "confirmed")]
    assert att(r, "flip_stack") == [("selinux-execstack", "likely")]
    # /tmp is not noexec, so of the file-mapping rules only execmod is left
    assert att(r, "patch_file_text") == [("selinux-execmod", "likely")]


def test_systemd_seccomp_filter_is_likely_and_sigsys_confirms():
    filt = {"state": "filter", "mode": 2, "filters": 1, "no_new_privs": True}
    r = report({"flip_rw_rx": "denied mprotect_rx EPERM", "mprotect_rx_noop": "denied mprotect_rx EPERM",
                "map_rx": "allowed"}, policies(seccomp=filt))
    attribute(r)
    assert att(r, "flip_rw_rx") == [("seccomp", "likely")]
    assert "Seccomp: 2" in evidence(r, "flip_rw_rx") and "no-op" in evidence(r, "flip_rw_rx")
    assert att(r, "mprotect_rx_noop") == [("seccomp", "likely")]
    r = report({"flip_rw_rx": "crashed mprotect_rx SIGSYS"}, policies(seccomp=filt))
    attribute(r)
    assert att(r, "flip_rw_rx") == [("seccomp", "confirmed")]
    r = report({"flip_rw_rx": "crashed mprotect_rx SIGSYS"}, policies())
    attribute(r)
    assert att(r, "flip_rw_rx") == [("unknown", "unknown")]


def test_noexec_mount_of_the_probe_directory():
    mounts = {"state": "on", "paths": {
        "shm": {"path": "/dev/shm", "mount_point": "/dev/shm", "fstype": "tmpfs", "noexec": True},
        "tmpdir": {"path": "/tmp", "mount_point": "/", "fstype": "ext4", "noexec": False}}}
    r = report({"dual_map_shm": "denied mmap_rx_view EPERM", "dual_map_file": "denied mmap_rx_view EPERM"},
               policies(noexec_mounts=mounts))
    attribute(r)
    assert att(r, "dual_map_shm") == [("noexec-mount", "confirmed")]
    assert "/dev/shm" in evidence(r, "dual_map_shm")
    # /tmp is not noexec: something else refused the file mapping
    assert att(r, "dual_map_file") == [("unknown", "unknown")]
    r = report({"dual_map_file": "denied mmap_rx_view EPERM"}, {})
    attribute(r)
    assert ("noexec-mount", "likely") in att(r, "dual_map_file")


def test_freebsd_shm_is_in_no_file_system():
    fb = {"freebsd_wx": {"state": "off"}, "hardenedbsd": {"state": "absent"},
          "noexec_mounts": {"state": "on", "paths": {
              "tmp": {"path": "/tmp", "mount_point": "/tmp", "fstype": "tmpfs", "noexec": True}}}}
    r = report({"dual_map_shm": "denied mmap_rx_view EPERM"}, fb, os_name="freebsd")
    attribute(r)
    assert att(r, "dual_map_shm") == [("unknown", "unknown")]
    assert "SHM_ANON" in evidence(r, "dual_map_shm")


def test_memfd_noexec_enforcing():
    r = report({"dual_map_memfd": "denied open EACCES"},
               policies(memfd_noexec={"state": "enforcing", "value": 2}))
    attribute(r)
    assert att(r, "dual_map_memfd") == [("memfd-noexec", "confirmed")]


def test_nx_from_policy_or_host():
    r = report({"exec_rw": "crashed call SIGSEGV", "exec_stack": "crashed call SIGSEGV"}, {}, cpu_nx=True)
    attribute(r)
    assert att(r, "exec_rw") == [("nx", "confirmed")] == att(r, "exec_stack")
    r = report({"exec_rw": "crashed call SIGSEGV"}, {}, cpu_nx=None)
    attribute(r)
    assert att(r, "exec_rw") == [("nx", "likely")]
    r = report({"flip_rw_rx": "crashed call SIGSEGV"}, {}, cpu_nx=True)
    attribute(r)   # code made RX that still crashes: not NX
    assert att(r, "flip_rw_rx") == [("unknown", "unknown")]


def test_bsd_mechanisms_are_scoped_to_their_os():
    r = report({"map_rwx": "denied mmap_rwx ENOTSUP"}, {"openbsd_wx": {"state": "enforcing", "wxabort": 0}},
               os_name="openbsd")
    attribute(r)
    assert att(r, "map_rwx") == [("openbsd-wx", "confirmed")]
    r = report({"map_rwx": "denied mmap_rwx ENOTSUP"}, policies())
    attribute(r)
    assert att(r, "map_rwx") == [("unknown", "unknown")]
    fb = {"freebsd_wx": {"state": "enforcing", "abi": "elf64", "allow_wx": {"elf64": 0},
                         "procctl": {"value": "0x80000000", "wxorx_enforce": True}},
          "hardenedbsd": {"state": "absent"}}
    r = report({"map_rwx": "denied mmap_rwx EACCES", "flip_rw_rx": "allowed"}, fb, os_name="freebsd")
    attribute(r)
    assert att(r, "map_rwx") == [("freebsd-wx", "confirmed")]


def test_silently_dropped_exec():
    hb = {"freebsd_wx": {"state": "off"}, "hardenedbsd": {"state": "opt_in",
          "pageexec": {"status": 1, "mode": "opt-in"}, "mprotect": {"status": 1, "mode": "opt-in"}}}
    r = report({"map_rwx": "dropped mmap_rwx rw-p"}, hb, os_name="freebsd")
    attribute(r)
    assert att(r, "map_rwx") == [("hardenedbsd-pageexec", "likely")]
    pax = policies(pax=PAX_ON, kernel_config={"state": "found", "options": {"CONFIG_PAX_MPROTECT_COMPAT": "y"}})
    r = report({"map_rwx": "dropped mmap_rwx rw-p"}, pax)
    attribute(r)
    assert att(r, "map_rwx") == [("pax-mprotect", "confirmed")]


@pytest.mark.parametrize("short,text", [("allowed", None), ("skipped", None)])
def test_allowed_and_skipped_get_no_attribution(short, text):
    r = report({"flip_rw_rx": short}, policies())
    r["probes"]["flip_rw_rx"]["attribution"] = ["stale"]
    attribute(r)
    assert "attribution" not in r["probes"]["flip_rw_rx"]


def test_timeouts_errors_and_wrong_results_are_not_refusals():
    r = report({"flip_rw_rx": "allowed"}, policies())
    base = r["probes"]["flip_rw_rx"]
    for outcome, word in (("timeout", "hang"), ("error", "could not run"), ("wrong_result", "instruction cache")):
        r["probes"]["flip_rw_rx"] = dict(base, outcome=outcome, value=7)
        attribute(r)
        assert att(r, "flip_rw_rx") == [("unknown", "unknown")]
        assert word in evidence(r, "flip_rw_rx")


def test_memfd_enosys_without_a_seccomp_filter_is_skipped():
    # No filter attached: the kernel lacks memfd_create (before 3.17); nothing refused it.
    r = report({"dual_map_memfd": "denied open ENOSYS", "dual_map_shm": "allowed"}, policies())
    r["summary"] = {}
    attribute(r)
    v = r["probes"]["dual_map_memfd"]
    assert v["outcome"] == "skipped" and "attribution" not in v
    assert "not implemented by this kernel" in v["detail"] and "Seccomp: 0" in v["detail"]
    assert r["strategies"]["dual_mapping"]["variants"] == {"memfd": "unknown", "shm": "works"}
    assert r["summary"]["dual_mapping"]["state"] == "works"
    assert "not via memfd (skipped: memfd_create is not implemented" in r["summary"]["dual_mapping"]["text"]


@pytest.mark.parametrize("seccomp", [{"state": "filter", "mode": 2, "filters": 1}, None])
def test_memfd_enosys_with_a_filter_or_no_detector_is_seccomp_likely(seccomp):
    pol = policies(seccomp=seccomp) if seccomp else {}
    r = report({"dual_map_memfd": "denied open ENOSYS"}, pol)
    attribute(r)
    assert r["probes"]["dual_map_memfd"]["outcome"] == "denied"
    assert att(r, "dual_map_memfd") == [("seccomp", "likely")]
    assert "open (memfd_create) failed with ENOSYS" in evidence(r, "dual_map_memfd")
    assert r["strategies"]["dual_mapping"]["blocked_by"] == ["seccomp"]


def test_an_outside_sigkill_blocks_nothing_unless_pax_kills():
    probes = {"flip_rw_rx": "killed call SIGKILL", "exec_rw": "killed call SIGKILL",
              "map_rwx": "allowed"}
    r = report(probes, policies())
    r["summary"] = {}
    attribute(r)
    assert r["probes"]["flip_rw_rx"]["outcome"] == "killed"
    assert r["strategies"]["wx_flip"]["verdict"] == "unknown"
    assert r["summary"]["wx_flip"]["state"] == "unknown"
    assert r["summary"]["nx"]["state"] == "unknown"
    assert "OOM killer" in r["summary"]["nx"]["text"]
    assert "W^X flipping" not in r["recommendation"]
    r = report(probes, policies(pax=PAX_ON))
    r["summary"] = {}
    attribute(r)
    assert r["strategies"]["wx_flip"] == dict(r["strategies"]["wx_flip"], verdict="blocked",
                                              blocked_by=["pax-pageexec"])
    assert r["summary"]["wx_flip"]["state"] == "blocked"
    assert r["summary"]["nx"]["state"] == "enforced"


def test_memfd_live_code_is_never_blamed_on_a_noexec_mount():
    # Under MDWE with an unknown mount table the memfd role still rules noexec out.
    pol = policies(mdwe={"state": "on", "value": 1}, noexec_mounts={"state": "unknown", "paths": {}})
    r = report({"repatch_rx": "denied mprotect_rx_again EACCES"}, pol)
    r["probes"]["repatch_rx"]["live_code"] = "memfd"
    attribute(r)
    assert att(r, "repatch_rx") == [("mdwe", "confirmed")]
    r = report({"repatch_rx": "denied mprotect_rx_again EACCES"}, pol)
    r["probes"]["repatch_rx"]["live_code"] = "file"
    attribute(r)
    assert ("noexec-mount", "likely") in att(r, "repatch_rx")   # $TMPDIR's mount is unknown


def test_pax_mprotect_refuses_rx_to_rw_of_mapped_live_code():
    # Under PaX MPROTECT the flip is refused, the live code comes from a memfd, and the
    # RX->RW (repatch_rx) and RX->RWX (patch_rwx) refusals are finally observable.
    r = report({"repatch_rx": "denied mprotect_rw EACCES", "patch_rwx": "denied mprotect_rwx EACCES"},
               policies(pax=PAX_ON))
    for pid in ("repatch_rx", "patch_rwx"):
        r["probes"][pid]["live_code"] = "memfd"
    attribute(r)
    assert att(r, "repatch_rx") == [("pax-mprotect", "confirmed")]
    assert att(r, "patch_rwx") == [("pax-mprotect", "confirmed")]
    assert "r-x -> rw-" in evidence(r, "repatch_rx")
    assert r["strategies"]["code_repatching"]["blocked_by"] == ["pax-mprotect"]


# --- strategies and recommendation ------------------------------------------------------------------

def test_strategies_and_recommendation_prefer_the_simplest_working_strategy():
    r = report({"flip_rw_rx": "allowed", "map_rwx": "denied mmap_rwx EACCES"},
               policies(mdwe={"state": "on", "value": 1}))
    attribute(r)
    assert r["strategies"]["wx_flip"]["verdict"] == "works"
    assert r["strategies"]["rwx_mapping"] == dict(r["strategies"]["rwx_mapping"], verdict="blocked",
                                                  blocked_by=["mdwe"])
    assert r["strategies"]["dual_mapping"]["verdict"] == "unknown"   # not probed
    assert "W^X flipping" in r["recommendation"] and "mdwe" in r["recommendation"]

    r = report({"flip_rw_rx": "denied mprotect_rx EACCES", "dual_map_memfd": "allowed",
                "dual_map_shm": "denied mmap_rx_view EPERM", "dual_map_file": "allowed"},
               policies(mdwe={"state": "on", "value": 1}))
    attribute(r)
    dual = r["strategies"]["dual_mapping"]
    assert dual["verdict"] == "works" and dual["blocked_by"] == []
    assert dual["variants"] == {"memfd": "works", "shm": "blocked", "file": "works"}
    assert "memfd_create" in r["recommendation"]

    r = report({"flip_rw_rx": "denied mprotect_rx EACCES", "dual_map_memfd": "skipped",
                "dual_map_shm": "allowed", "map_rwx": "denied mmap_rwx EACCES"},
               policies(mdwe={"state": "on", "value": 1}))
    attribute(r)
    assert "shm_open" in r["recommendation"]


def test_recommendation_when_everything_is_blocked_names_the_fix():
    r = report({"flip_rw_rx": "denied mprotect_rx EACCES", "map_rwx": "denied mmap_rwx EPERM",
                "dual_map_memfd": "denied mmap_rx_view EACCES", "dual_map_shm": "denied mmap_rx_view EPERM",
                "dual_map_file": "denied mmap_rx_view EPERM"}, policies(pax=PAX_ON))
    attribute(r)
    assert all(r["strategies"][s]["verdict"] == "blocked" for s in ("wx_flip", "rwx_mapping", "dual_mapping"))
    assert "interpreter or ahead-of-time" in r["recommendation"]
    assert "user.pax.flags" in r["recommendation"]


def test_recommendation_says_when_results_hold_only_for_marked_programs():
    marked = dict(PAX_ON, status_line="PemRs", interpreter="/usr/bin/python3.6",
                  markings={"source": "xattr", "xattr": "em"}, scope="only for programs marked like it")
    r = report({"flip_rw_rx": "allowed"}, policies(pax=marked))
    attribute(r)
    assert "marked like /usr/bin/python3.6" in r["recommendation"]
    r = report({}, policies())
    attribute(r)
    assert r["recommendation"].startswith("Not enough evidence")
    assert all(s["verdict"] == "unknown" for s in r["strategies"].values())


# --- shape and robustness ----------------------------------------------------------------------------

def merged_schema():
    """report-v1.json, which documents the policy sections too."""
    return _schema.load_schema(1)


def sections_schema():
    """The new sections but policies (synthetic reports carry partial policies)."""
    schema = merged_schema()
    probes = {"type": "object", "additionalProperties": {
        "type": "object", "properties": {"attribution": {"$ref": "#/$defs/attribution"}}}}
    return {"type": "object", "$defs": schema["$defs"],
            "properties": dict({k: schema["properties"][k] for k in ("strategies", "recommendation")},
                               probes=probes)}


OUTCOMES = st.sampled_from(["allowed", "skipped", "denied", "crashed", "killed", "dropped", "timeout"])
ERRNOS = st.sampled_from(["EACCES", "EPERM", "ENOTSUP", "EINVAL", "ENOMEM"])
SIGNALS = st.sampled_from(["SIGSEGV", "SIGBUS", "SIGKILL", "SIGSYS", "SIGABRT", "SIGILL"])


@st.composite
def random_reports(draw):
    probes = {}
    for pid in draw(st.lists(st.sampled_from(sorted(STEPS)), unique=True, max_size=8)):
        outcome = draw(OUTCOMES)
        step = draw(st.sampled_from([name for name, _ in STEPS[pid]]))
        if outcome in ("allowed", "skipped"):
            probes[pid] = outcome
        elif outcome == "denied":
            probes[pid] = "denied %s %s" % (step, draw(ERRNOS))
        elif outcome == "dropped":
            probes[pid] = "dropped %s rw-p" % step
        elif outcome == "timeout":
            probes[pid] = "allowed"
        else:
            probes[pid] = "%s %s %s" % (outcome, step, draw(SIGNALS))
    os_name = draw(st.sampled_from(["linux", "freebsd", "netbsd", "openbsd", None]))
    pol = draw(st.sampled_from([None, {}, LINUX_PLAIN, policies(pax=PAX_ON),
                                policies(mdwe={"state": "unknown", "reason": "x"})]))
    return report(probes, pol, os_name=os_name, cpu_nx=draw(st.sampled_from([True, False, None])))


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(random_reports())
def test_any_report_gets_well_formed_attribution(r):
    attribute(r)
    for pid, result in r["probes"].items():
        if result["outcome"] in ("allowed", "skipped"):
            assert "attribution" not in result
            continue
        assert result["attribution"], pid
        for a in result["attribution"]:
            assert a["mechanism"] in MECHANISMS
            assert a["confidence"] in ("confirmed", "likely", "unknown")
            assert (a["mechanism"] == "unknown") == (a["confidence"] == "unknown")
            assert a["evidence"] and all(isinstance(e, str) and e for e in a["evidence"])
    assert isinstance(r["recommendation"], str) and r["recommendation"].endswith(".")
    assert _schema.validate(r, sections_schema()) == []


def test_attribute_tolerates_odd_reports():
    for odd in ({}, {"probes": None}, {"probes": {"x": None, "y": "junk", "z": {}}},
                {"probes": {"flip_rw_rx": {"outcome": "denied"}}, "policies": {"pax": None}}):
        attribute(odd)
        assert "recommendation" in odd and "strategies" in odd


# --- real reports under real confinement -------------------------------------------------------------

def real(reports, name):
    """The report `memprobe run` wrote under this confinement: policies, attribution,
    strategies and recommendation all come from the run itself."""
    r = reports.get(name)
    assert "policies" in r and "strategies" in r and "recommendation" in r
    again = copy.deepcopy(r)
    attribute(again)
    assert again == r      # the run's attribution is what the report alone implies
    return r


def refused(r):
    return {pid for pid, v in r["probes"].items() if v["outcome"] not in ("allowed", "skipped")}


def test_real_plain_host(reports):
    r = real(reports, "plain")
    for pid in refused(r):
        # on this host only code in never-executable memory fails, and that is NX
        assert pid in ("exec_rw", "exec_heap", "exec_stack"), (pid, r["probes"][pid]["outcome"])
        assert att(r, pid) == [("nx", "confirmed" if r["host"]["cpu_nx"] else "likely")]
    assert r["strategies"]["wx_flip"]["verdict"] == "works"
    assert r["recommendation"].startswith("Use W^X flipping")
    if "tmpdir" in r["process"]:   # the detector looks at the directory the probes used
        assert r["policies"]["noexec_mounts"]["paths"]["tmpdir"]["path"] == r["process"]["tmpdir"]
    assert _schema.validate(r, merged_schema()) == []


def test_real_mdwe(reports):
    r = real(reports, "mdwe")
    for pid in ("flip_rw_rx", "map_rwx", "flip_rw_rwx", "repatch_rx", "read_implies_exec"):
        assert att(r, pid)[0] == ("mdwe", "confirmed"), (pid, r["probes"][pid])
    assert r["probes"]["map_rx"]["outcome"] == "allowed"   # MDWE allows a plain RX mmap
    assert r["strategies"]["wx_flip"]["blocked_by"] == ["mdwe"]
    assert r["strategies"]["rwx_mapping"]["blocked_by"] == ["mdwe"]
    assert r["strategies"]["dual_mapping"]["verdict"] == "works"
    assert "memfd_create" in r["recommendation"] and "[mdwe]" in r["recommendation"]
    assert _schema.validate(r, merged_schema()) == []


def test_real_systemd_style_seccomp_filter(reports):
    r = real(reports, "seccomp")
    assert r["probes"]["mprotect_rx_noop"]["errno_name"] == "EPERM"
    for pid in ("flip_rw_rx", "map_rwx", "mprotect_rx_noop", "repatch_rx", "patch_file_text"):
        assert att(r, pid) == [("seccomp", "likely")], (pid, r["probes"][pid])
        assert "Seccomp: 2" in evidence(r, pid)
    assert r["strategies"]["wx_flip"] == dict(r["strategies"]["wx_flip"], verdict="blocked",
                                              blocked_by=["seccomp"])
    assert r["strategies"]["dual_mapping"]["variants"]["memfd"] == "works"
    assert "memfd_create" in r["recommendation"]


def test_real_seccomp_kill_action(reports):
    r = real(reports, "seccomp-kill")
    for pid in ("flip_rw_rx", "map_rwx", "mprotect_rx_noop"):
        assert r["probes"][pid]["signal"] == "SIGSYS"
        assert att(r, pid) == [("seccomp", "confirmed")]
    assert r["strategies"]["code_repatching"]["blocked_by"] == ["seccomp"]


def test_real_noexec_dev_shm(reports):
    r = real(reports, "noexec-shm")
    assert att(r, "dual_map_shm") == [("noexec-mount", "confirmed")]
    assert "/dev/shm" in evidence(r, "dual_map_shm")
    assert refused(r) - {"exec_rw", "exec_heap", "exec_stack"} == {"dual_map_shm"}
    assert r["strategies"]["dual_mapping"]["variants"] == {"memfd": "works", "shm": "blocked", "file": "works"}
    assert r["strategies"]["wx_flip"]["verdict"] == "works"


def test_debian_allow_execmem_off_is_named_in_the_evidence():
    # Debian's reference policy: allow_execmem (off: execmem denied), no deny_execmem.
    sel = {"state": "enforcing", "context": "system_u:system_r:initrc_t:s0",
           "booleans": {"allow_execmem": False, "allow_execheap": False}}
    r = report({"map_rx": "denied mmap_rx EACCES", "flip_rw_rx": "denied mprotect_rx EACCES"},
               policies(selinux=sel))
    attribute(r)
    assert att(r, "map_rx") == [("selinux-execmem", "confirmed")]
    assert "the allow_execmem boolean is off" in evidence(r, "map_rx")
    assert "the allow_execmem boolean is off" in evidence(r, "flip_rw_rx")


def test_debian_execheap_boolean_is_read_under_its_own_name():
    sel = {"state": "enforcing", "context": "x",
           "booleans": {"allow_execmem": True, "allow_execheap": False, "allow_execstack": True}}
    r = report({"map_rx": "allowed", "flip_heap": "denied mprotect_rwx EACCES",
                "flip_stack": "denied mprotect_rwx EACCES"}, policies(selinux=sel))
    attribute(r)
    assert att(r, "flip_heap") == [("selinux-execheap", "confirmed")]
    assert "the allow_execheap boolean is off" in evidence(r, "flip_heap")
    assert att(r, "flip_stack") == [("selinux-execstack", "likely")]


def test_personality_refused_with_eperm_under_a_filter_is_lockpersonality():
    # systemd's LockPersonality=yes, seen in a real unit: personality() itself gets EPERM.
    filt = {"state": "filter", "mode": 2, "filters": 15, "no_new_privs": True}
    r = report({"read_implies_exec": "denied personality EPERM", "map_rx": "allowed"},
               policies(seccomp=filt))
    attribute(r)
    assert att(r, "read_implies_exec") == [("seccomp", "likely")]
    assert "LockPersonality=" in evidence(r, "read_implies_exec")
    r = report({"read_implies_exec": "denied personality EPERM"}, policies())
    attribute(r)
    assert att(r, "read_implies_exec") == [("unknown", "unknown")]
