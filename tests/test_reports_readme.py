"""The committed reference reports and their generated README agree.

The references are the files named in reports/references.txt; any other report in
reports/ (`memprobe run` writes the user's own there) is not looked at.
"""

import os
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPORTS = os.path.join(ROOT, "reports")
sys.path.insert(0, os.path.join(ROOT, "tools"))
import make_reports_readme  # noqa: E402  (tools/ is not a package)

REFERENCES = make_reports_readme.reference_names()
CROSS = [n for n in REFERENCES if "-qemu-" in n or "-native-debian-" in n]


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
    from probe.report import validator as _schema
    assert _schema.validate(doc) == []


def test_every_rig_architecture_has_a_reference_report():
    arches = {n.split("-qemu-")[0].split("-native-")[0][len("linux-"):] for n in CROSS}
    assert {"aarch64", "arm", "arm-thumb", "riscv64", "ppc64le", "s390x", "mips64el", "mipsel",
            "loongarch64", "i386"} <= arches


def test_the_index_lists_existing_references():
    # The index names files in reports/ only, and every reference is listed: a
    # reference that is not listed would silently drop out of README.md.
    assert {"linux-x86_64-plain.yaml", "linux-x86_64-mdwe.yaml", "linux-x86_64-seccomp.yaml"} <= set(REFERENCES)
    assert len(CROSS) >= 10
    for name in REFERENCES:
        assert os.path.isfile(os.path.join(REPORTS, name)), name


def test_index_refuses_paths_and_missing_files(tmp_path):
    index = tmp_path / "references.txt"
    (tmp_path / "a.yaml").write_text("x")
    index.write_text("# comment\na.yaml  # trailing comment\n\n")
    assert make_reports_readme.reference_names(str(index)) == ["a.yaml"]
    index.write_text("../a.yaml\n")
    with pytest.raises(SystemExit, match="not a file name"):
        make_reports_readme.reference_names(str(index))
    index.write_text("b.yaml\n")
    with pytest.raises(SystemExit, match="missing reports: b.yaml"):
        make_reports_readme.reference_names(str(index))


def _git(*args):
    return subprocess.run(["git", "-C", ROOT] + list(args), capture_output=True, text=True)


def _is_git_checkout():
    if shutil.which("git") is None:
        return False
    top = _git("rev-parse", "--show-toplevel")
    return top.returncode == 0 and os.path.realpath(top.stdout.strip()) == os.path.realpath(ROOT)


@pytest.mark.skipif(not _is_git_checkout(),
                    reason="not a git checkout (the index alone tells references apart)")
def test_git_tracks_the_references_and_ignores_user_reports():
    tracked = _git("ls-files", "reports").stdout.split()
    reports = {os.path.basename(p) for p in tracked if p.endswith((".yaml", ".yml", ".json"))}
    assert reports == set(REFERENCES)
    for user_report in ("reports/linux-x86_64-myhost.yaml", "reports/linux-x86_64-myhost-mdwe.json"):
        assert _git("check-ignore", "-q", user_report).returncode == 0, user_report
    assert _git("check-ignore", "-q", "reports/references.txt").returncode == 1
