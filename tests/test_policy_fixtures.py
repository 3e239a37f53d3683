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

import os

import pytest
import yaml

from probe.attribution import attribute as _attribution
from probe.report import validator as _schema
from probe.mechanisms import detect

from helpers.policy_samples import expand
from helpers.schemas import policies_schema

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
TREES = sorted(d for d in os.listdir(FIXTURES)
               if os.path.isfile(os.path.join(FIXTURES, d, "expected.yaml")))


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
    assert _schema.validate(policies, policies_schema()) == []
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
    got = detect(root=str(tmp_path), os_name=spec["os"])
    assert _schema.validate(got, policies_schema()) == []
    for name, result in got.items():
        if name == "openbsd_wx":   # always on: no source needed to say so
            assert result["state"] == "enforcing" and result["wxabort"] is None, result
            continue
        assert result["state"] in ("unknown", "absent", "disabled", "unsupported", "off"), (name, result)
        if result["state"] in ("unknown", "absent"):
            assert result.get("reason"), (name, result)


def _tree_with_exe(tmp_path, tree, exe):
    import shutil
    target = tmp_path / tree
    shutil.copytree(os.path.join(FIXTURES, tree), target)
    (target / "proc" / "self" / "exe").write_bytes(exe)
    return str(target)


def test_netbsd_interpreter_exempted_by_paxctl(tmp_path):
    from helpers.elf import make_elf
    import struct
    root = _tree_with_exe(tmp_path, "netbsd10", make_elf(64, "little", notes=[("PaX", 3, struct.pack("<I", 0x02))]))
    got = detect(root=root)["netbsd_pax"]
    assert got["state"] == "on" and got["interpreter_marking"] == "+m"
    assert got["effective_for_interpreter"] is False
    r = {"host": {"os": "netbsd"}, "policies": detect(root=root),
         "probes": {"flip_rw_rx": expand("flip_rw_rx", "denied mprotect_rx EACCES")}}
    _attribution.attribute(r)
    assert [a["mechanism"] for a in r["probes"]["flip_rw_rx"]["attribution"]] == ["unknown"]
    assert "+m" in " ".join(r["probes"]["flip_rw_rx"]["attribution"][0]["evidence"])


def test_freebsd_wxneeded_interpreter(tmp_path):
    from helpers.elf import make_elf
    import struct
    exe = make_elf(64, "little", osabi=9, notes=[("FreeBSD", 4, struct.pack("<I", 0x08))])
    root = _tree_with_exe(tmp_path, "freebsd14-allow-wx-0", exe)
    assert detect(root=root)["freebsd_wx"]["interpreter_wxneeded"] is True


def test_openbsd_wxneeded_interpreter_on_a_wxallowed_mount(tmp_path):
    from helpers.elf import make_elf
    from probe.policy.markings import PT_OPENBSD_WXNEEDED
    root = _tree_with_exe(tmp_path, "openbsd7", make_elf(64, "little", osabi=12,
                                                          phdrs=[(PT_OPENBSD_WXNEEDED, 0)]))
    got = detect(root=root)["openbsd_wx"]
    assert got["state"] == "off" and got["interpreter_wxneeded"] is True
    r = {"host": {"os": "openbsd"}, "policies": detect(root=root),
         "probes": {"map_rwx": expand("map_rwx", "denied mmap_rwx ENOTSUP")}}
    _attribution.attribute(r)
    assert r["probes"]["map_rwx"]["attribution"][0]["mechanism"] == "unknown"
