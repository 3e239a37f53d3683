"""The guest rig's parts that need no guest: the job disk, the job scripts, reading a
job's output back. Booting is tested by tests/test_guests.py under `tox -e vm`."""

import io
import os
import subprocess
import sys
import tarfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "tools", "guest"), os.path.join(ROOT, "tools")]

import boot  # noqa: E402
import cases  # noqa: E402
import image  # noqa: E402


def test_job_disk_holds_the_script_the_package_and_extra_files_in_whole_sectors():
    data = boot.job_tar("echo hi\n", ROOT, {"demo.service": "[Unit]\n"})
    assert len(data) % 512 == 0
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        assert tar.extractfile("job.sh").read() == b"echo hi\n"
        assert tar.getmember("job.sh").mode == 0o755
        assert tar.extractfile("demo.service").read() == b"[Unit]\n"
    assert "src/probe/cli.py" in names and "src/probe/engine/like_unit.py" in names
    assert not [n for n in names if "__pycache__" in n]


@pytest.mark.parametrize("name", sorted(cases.BOOTS))
def test_every_job_script_is_valid_shell(name, tmp_path):
    script = tmp_path / "job.sh"
    script.write_text(cases.BOOTS[name].script("qemu-system:qemu-system-x86_64 7.2 (TCG)"))
    proc = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_every_boot_names_an_image_and_the_memfd_sysctl_comes_last():
    for b in cases.BOOTS.values():
        assert b.image in image.IMAGES
    trixie = cases.BOOTS["trixie"].lines
    assert trixie[-2].startswith("sysctl -q -w vm.memfd_noexec=2")   # cannot be lowered again


def test_job_status_and_output_are_read_between_the_markers():
    text = "noise\nMEMPROBE-JOB-BEGIN\nstep plain: exit 0\nMEMPROBE-JOB-END 3\n"
    assert boot.job_status(text) == 3
    assert boot.job_output(text) == "step plain: exit 0\n"
    assert boot.job_status("MEMPROBE-JOB-BEGIN\nstill running\n") is None


def test_the_out_disk_is_a_tar_followed_by_zeros(tmp_path):
    disk = tmp_path / "out.img"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("./plain.rc")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"0\n"))
    disk.write_bytes(buf.getvalue() + b"\0" * (1 << 20))
    assert boot.read_out_disk(str(disk)) == {"plain.rc": b"0\n"}


def test_a_qemu_that_is_still_running_is_killed_by_its_pid():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                            stdout=subprocess.PIPE)
    boot.stop(proc)
    assert proc.returncode is not None and proc.returncode < 0
