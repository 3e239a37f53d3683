"""The README's two commands, in order, on a fresh checkout: `memprobe run` (which writes
the user's own report into reports/), then the test suite's reference checks.

The checkout is a copy of the project without git metadata or build state, as an
unpacked source archive would be; `python -m probe run` from its top directory is what
`.venv/bin/memprobe run` runs there.
"""

import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOT_IN_A_CHECKOUT = shutil.ignore_patterns(".git", ".venv", ".tox", "__pycache__", ".pytest_cache",
                                           ".hypothesis", "build", "dist", "*.egg-info")


def _checkout(tmp_path):
    """A copy as a fresh clone has it: a user's own reports in reports/ (git ignores them;
    the README's first command may have written one here) are not part of it."""
    path = str(tmp_path / "memprobe")
    shutil.copytree(ROOT, path, ignore=NOT_IN_A_CHECKOUT)
    reports = os.path.join(path, "reports")
    with open(os.path.join(reports, "references.txt"), encoding="utf-8") as f:
        kept = {line.strip() for line in f if line.strip() and not line.startswith("#")}
    for name in os.listdir(reports):
        if name not in kept | {"README.md", "references.txt"}:
            os.unlink(os.path.join(reports, name))
    return path


def _run(checkout, *argv):
    env = dict(os.environ, PYTHONPATH=checkout)
    return subprocess.run([sys.executable] + list(argv), capture_output=True, text=True,
                          cwd=checkout, env=env, timeout=300)


def test_readme_commands_work_in_order_and_twice(tmp_path):
    checkout = _checkout(tmp_path)
    before = set(os.listdir(os.path.join(checkout, "reports")))
    for argv in (["run"], ["run"], ["run", "--only", "map_rx", "--format", "json"]):
        proc = _run(checkout, "-m", "probe", *argv)
        assert proc.returncode == 0, proc.stderr
    written = set(os.listdir(os.path.join(checkout, "reports"))) - before
    assert len(written) == 2, written        # the full report (written twice) and the subset's
    proc = _run(checkout, os.path.join("tools", "make_reports_readme.py"), "--check")
    assert proc.returncode == 0, proc.stderr
    proc = _run(checkout, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                os.path.join("tests", "test_reports_readme.py"),
                os.path.join("tests", "test_reference_reports.py"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout


def test_generator_ignores_a_user_report_that_copies_a_reference_name(tmp_path):
    # A user's report, even one that looks like a reference, is not tabulated unless listed.
    checkout = _checkout(tmp_path)
    reports = os.path.join(checkout, "reports")
    shutil.copy(os.path.join(reports, "linux-x86_64-plain.yaml"),
                os.path.join(reports, "linux-x86_64-qemu-debian-mine.yaml"))
    proc = _run(checkout, os.path.join("tools", "make_reports_readme.py"), "--check")
    assert proc.returncode == 0, proc.stderr
