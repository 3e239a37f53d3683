"""Every fixture tree under tests/fixtures/<os>-<variant>/: the detectors read it as they
would the host, and (where the fixture gives sample probes) attribution, strategies and
the recommendation follow from it.

expected.yaml:
  os:          the OS the tree comes from
  detectors:   what detect(root=tree) must report (a subset: listed keys must match)
  probes:      sample outcomes in short form: "allowed", "skipped", "denied STEP ERRNO",
               "crashed STEP SIGNAL", "killed STEP SIGKILL", "dropped STEP PERMS"
  attribution: probe -> ["mechanism/confidence", ...] in the order reported
  evidence_contains: probe -> substrings of the first attribution's evidence
  strategies:  strategy -> subset of its entry
  recommendation: substrings of the recommendation
"""

import errno
import os
import signal

import pytest
import yaml

from probe import _attribution
from probe._policy import detect

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
TREES = sorted(d for d in os.listdir(FIXTURES)
               if os.path.isfile(os.path.join(FIXTURES, d, "expected.yaml")))

# The steps each probe announces (probe/_probes.py) and the permissions the mapping
# has after each, as the engine records them.
STEPS = {
    "exec_rw": [("mmap_rw", "rw-p"), ("write", None), ("call", None)],
    "flip_rw_rx": [("mmap_rw", "rw-p"), ("write", None), ("mprotect_rx", "r-xp"), ("call", None)],
    "map_rwx": [("mmap_rwx", "rwxp"), ("write", None), ("call", None)],
    "flip_rw_rwx": [("mmap_rw", "rw-p"), ("mprotect_rwx", "rwxp"), ("write", None), ("call", None)],
    "map_rx": [("mmap_rx", "r-xp")],
    "mprotect_rx_noop": [("mmap_rx", "r-xp"), ("mprotect_rx", "r-xp")],
    "repatch_rx": [("mmap_rw", "rw-p"), ("write", None), ("mprotect_rx", "r-xp"), ("call_original", None),
                   ("mprotect_rw", "rw-p"), ("patch", None), ("mprotect_rx_again", "r-xp"), ("call", None)],
    "patch_rwx": [("mmap_rw", "rw-p"), ("write", None), ("mprotect_rx", "r-xp"), ("call_original", None),
                  ("mprotect_rwx", "rwxp"), ("patch", None), ("call", None)],
    "exec_heap": [("malloc", None), ("write", None), ("call", None)],
    "flip_heap": [("malloc", None), ("mprotect_rwx", "rwxp"), ("write", None), ("call", None)],
    "exec_stack": [("find_stack", None), ("write", None), ("call", None)],
    "flip_stack": [("find_stack", None), ("mprotect_rwx", "rwxp"), ("write", None), ("call", None)],
    "patch_file_text": [("open", None), ("mmap_file_rx", "r-xp"), ("call_original", None),
                        ("mprotect_rw", "rw-p"), ("patch", None), ("mprotect_rx_again", "r-xp"),
                        ("call", None)],
    "read_implies_exec": [("personality", None), ("mmap_rw", "rwxp"), ("write", None), ("call", None)],
}
for _v in ("memfd", "shm", "file"):
    STEPS["dual_map_" + _v] = [("open", None), ("mmap_rw_view", "rw-s"), ("mmap_rx_view", "r-xs"),
                               ("write", None), ("call", None)]
EXPECTED_VALUE = {"map_rx": None, "mprotect_rx_noop": None, "repatch_rx": 42, "patch_rwx": 42,
                  "patch_file_text": 42}


def expand(probe_id, short):
    """A probe result as the engine reports it, from the fixture's short form."""
    words = short.split()
    outcome = words[0]
    seq = STEPS[probe_id]
    expected = EXPECTED_VALUE.get(probe_id, 23)
    r = {"outcome": outcome, "step": None, "errno": None, "errno_name": None, "signal": None,
         "signal_number": None, "value": None, "expected": expected, "exec_dropped": False,
         "duration_ms": 1.0, "detail": short, "steps": []}
    if outcome == "skipped":
        return r
    if outcome == "allowed":
        upto, last_perms = len(seq), True
        r["value"] = expected
    else:
        step = words[1]
        upto = [name for name, _ in seq].index(step) + 1
        last_perms = False
    steps = [{"name": n, "perms": p} if p else {"name": n} for n, p in seq[:upto]]
    r["step"] = steps[-1]["name"]
    if outcome == "denied":
        r.update(errno_name=words[2], errno=getattr(errno, words[2], 0))
    elif outcome in ("crashed", "killed"):
        r.update(signal=words[2], signal_number=int(getattr(signal, words[2])))
    elif outcome == "dropped":
        r.update(outcome="denied", exec_dropped=True)
        steps[-1]["perms"] = words[2]
        last_perms = True
    if not last_perms:
        steps[-1].pop("perms", None)
    r["steps"] = steps
    return r


def assert_subset(expected, actual, path="detectors"):
    if isinstance(expected, dict):
        assert isinstance(actual, dict), "%s: expected a mapping, got %r" % (path, actual)
        for key, value in expected.items():
            assert key in actual, "%s: missing key %r (have %s)" % (path, key, sorted(actual))
            assert_subset(value, actual[key], "%s.%s" % (path, key))
    else:
        assert actual == expected, "%s: expected %r, got %r" % (path, expected, actual)


def load(tree):
    with open(os.path.join(FIXTURES, tree, "expected.yaml"), encoding="utf-8") as f:
        return yaml.safe_load(f)


def report_for(tree, spec):
    root = os.path.join(FIXTURES, tree)
    return {"host": {"os": spec["os"], "cpu_nx": None}, "process": {},
            "policies": detect(root=root),
            "probes": {pid: expand(pid, short) for pid, short in (spec.get("probes") or {}).items()}}


def test_every_required_variant_is_present():
    required = {"gentoo-hardened-pax-PeMRs", "gentoo-hardened-pax-PemRs", "gentoo-pax-nomm",
                "gentoo-pax-softmode", "fedora-selinux-enforcing-deny-execmem",
                "debian-systemd-mdwe-seccomp", "debian-plain", "ubuntu-plain", "freebsd14-allow-wx-0",
                "freebsd14-allow-wx-1", "hardenedbsd", "netbsd10", "openbsd7"}
    assert required <= set(TREES)


@pytest.mark.parametrize("tree", TREES)
def test_fixture(tree):
    spec = load(tree)
    root = os.path.join(FIXTURES, tree)
    policies = detect(root=root)
    # The tree says which OS it is (uname.txt), and the OS decides the detector set.
    assert detect(root=root, os_name=spec["os"]) == policies
    assert_subset(spec["detectors"], policies)
    for name, result in policies.items():
        assert "state" in result, name
        if result["state"] == "unknown":
            assert result.get("reason"), "%s: unknown without a reason" % name
    if not spec.get("probes"):
        return
    report = report_for(tree, spec)
    _attribution.attribute(report)
    for pid, result in report["probes"].items():
        want = (spec.get("attribution") or {}).get(pid)
        got = ["%s/%s" % (a["mechanism"], a["confidence"]) for a in result.get("attribution", ())]
        if result["outcome"] in ("allowed", "skipped"):
            assert "attribution" not in result, pid
            assert want is None, "%s: the fixture expects attribution of an allowed probe" % pid
        else:
            assert want is not None, "%s (%s): attributed %s, but the fixture expects nothing" % (
                pid, result["outcome"], got)
            assert got == want, "%s: %s" % (pid, [(a["mechanism"], a["confidence"], a["evidence"])
                                                 for a in result["attribution"]])
            for a in result["attribution"]:
                assert a["evidence"] and all(isinstance(e, str) and e for e in a["evidence"])
    for pid, parts in (spec.get("evidence_contains") or {}).items():
        text = " | ".join(report["probes"][pid]["attribution"][0]["evidence"])
        for part in parts:
            assert part in text, "%s: %r not in %r" % (pid, part, text)
    for name, want in (spec.get("strategies") or {}).items():
        assert_subset(want, report["strategies"][name], "strategies.%s" % name)
    for part in spec.get("recommendation") or ():
        assert part in report["recommendation"], report["recommendation"]


@pytest.mark.parametrize("tree", TREES)
def test_fixture_tree_missing_files_give_reasons(tree, tmp_path):
    """An empty tree of the same OS: every detector says unknown/absent with a reason."""
    spec = load(tree)
    for name, result in detect(root=str(tmp_path), os_name=spec["os"]).items():
        if name == "openbsd_wx":   # always on: no source needed to say so
            assert result["state"] == "enforcing" and result["wxabort"] is None, result
            continue
        assert result["state"] in ("unknown", "absent", "disabled", "unsupported", "off"), (name, result)
        if result["state"] in ("unknown", "absent"):
            assert result.get("reason"), (name, result)
