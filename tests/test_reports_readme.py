"""The committed reference reports and their generated README agree."""

import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPORTS = os.path.join(ROOT, "reports")
CROSS = sorted(n for n in os.listdir(REPORTS) if "-qemu-" in n or "-native-debian-" in n)


def test_reports_readme_is_up_to_date():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "make_reports_readme.py"), "--check"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name", CROSS)
def test_cross_report_is_what_its_name_says(name):
    # linux-<arch>-<qemu|native>-debian-<suite>.yaml, written by tools/cross/rig.py report
    with open(os.path.join(REPORTS, name), encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    host = doc["host"]
    stem = name[:-len(".yaml")]
    assert stem.startswith("%s-%s-" % (host["os"], host["arch"]))
    method = host["provenance"]["method"]
    assert ("-qemu-" in stem) == (method == "qemu-user")
    if method == "qemu-user":
        assert host["provenance"]["emulator"].startswith("qemu-")
    from probe import _schema
    assert _schema.validate(doc) == []


def test_every_rig_architecture_has_a_reference_report():
    arches = {n.split("-qemu-")[0].split("-native-")[0][len("linux-"):] for n in CROSS}
    assert {"aarch64", "arm", "arm-thumb", "riscv64", "ppc64le", "s390x", "mips64el", "mipsel",
            "loongarch64", "i386"} <= arches
