"""The committed reference reports in reports/: loadable, valid, and saying what they claim.

Only the files listed in reports/references.txt are references; a user's own report
in reports/ is not checked here.
"""

import os
import sys

import pytest

from probe.report import load as _load

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import make_reports_readme  # noqa: E402  (tools/ is not a package)

REPORTS = [os.path.join(ROOT, "reports", n) for n in make_reports_readme.reference_names()]


def test_there_are_reference_reports():
    names = {os.path.basename(p) for p in REPORTS}
    assert {"linux-x86_64-plain.yaml", "linux-x86_64-mdwe.yaml", "linux-x86_64-seccomp.yaml"} <= names


@pytest.mark.parametrize("path", REPORTS, ids=os.path.basename)
def test_reference_report_is_valid_and_consistent(path):
    doc = _load.load_report(path)          # the untrusted-input loader, full schema check
    host, probes = doc["host"], doc["probes"]
    assert os.path.basename(path).startswith("linux-%s-" % host["arch"])
    assert probes["exec_rw"]["outcome"] == "crashed"          # NX everywhere we ran
    selinux = doc["policies"].get("selinux") or {}
    booleans = selinux.get("booleans") or {}
    execmem_denied = selinux.get("state") == "enforcing" and (
        booleans.get("allow_execmem") is False or booleans.get("deny_execmem") is True)
    confined = doc["process"]["mdwe"] or doc["process"]["seccomp_mode"] or execmem_denied
    for pid, value in (("flip_rw_rx", 23), ("map_rwx", 23), ("repatch_rx", 42)):
        if not confined:
            assert (probes[pid]["outcome"], probes[pid]["value"]) == ("allowed", value), pid
        elif pid == "repatch_rx":
            # Flipping is refused, so its live code is mapped from a memfd or a file; whether
            # that code may be patched is another permission (SELinux execmod), not this one.
            assert probes[pid]["live_code"] in ("memfd", "file"), pid
            assert probes[pid]["outcome"] in ("denied", "crashed") or probes[pid]["value"] == value
        else:
            assert probes[pid]["outcome"] in ("denied", "crashed"), pid
    prov = host["provenance"]
    if prov["method"] == "qemu-user":
        assert prov["emulator"] and "qemu" in prov["emulator"]
    elif prov["method"] == "qemu-system":           # a real guest kernel (tools/guest)
        assert prov["emulator"].startswith("qemu-system-x86_64 ")
        assert host["kernel_release"] in prov["note"] and "guest" in os.path.basename(path)
    else:
        assert prov["method"] == "native" and prov["emulator"] is None
