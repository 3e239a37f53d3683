"""One boot of a guest under QEMU's software emulation (TCG), running one job.

The job is a shell script plus the project's package, packed as a raw tar onto a
read-only second disk; the image's oneshot unit runs it, writes its output to the
second serial port and the files it leaves in out/ as a tar onto a third disk, then
powers off. QEMU runs on a throw-away qcow2 overlay, so the image never changes,
with a bounded timeout, and is killed by its PID whatever happens.
"""

import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time

from debian_archive import RigError, log, run

OUT_DISK_BYTES = 64 << 20
QEMU = "qemu-system-x86_64"
# No usable hardware virtualisation is assumed: TCG with every CPU feature (NX included).
QEMU_MACHINE = ["-accel", "tcg,thread=multi", "-cpu", "max", "-smp", "2", "-m", "2048"]
BASE_APPEND = "root=/dev/vda rw console=ttyS0 panic=-1 quiet"
SELINUX_APPEND = "security=selinux selinux=1 enforcing=1"


class Result:
    """What one boot gave back: the job's exit status, its output (second serial port),
    the kernel console, and the files of out/ (name -> bytes)."""

    def __init__(self, status, output, console, files, seconds):
        self.status = status
        self.output = output
        self.console = console
        self.files = files
        self.seconds = seconds

    def text(self, name):
        return self.files[name].decode("utf-8", "replace") if name in self.files else None


def qemu_version():
    out = run([QEMU, "--version"], timeout=30)
    m = re.search(r"version (\S+)", out)
    return "%s %s" % (QEMU, m.group(1) if m else "?")


def job_tar(job_script, project, extra_files=None):
    """The job disk: job.sh, src/probe (the working tree's package) and extra files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        def add_bytes(name, data, mode=0o644):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            tar.addfile(info, io.BytesIO(data))
        add_bytes("job.sh", job_script.encode(), 0o755)
        for name, data in sorted((extra_files or {}).items()):
            add_bytes(name, data.encode() if isinstance(data, str) else data)
        tar.add(os.path.join(project, "probe"), arcname="src/probe",
                filter=lambda info: None if "__pycache__" in info.name else info)
    data = buf.getvalue()
    return data + b"\0" * (-len(data) % 512)


def boot(image_file, kernel, initrd, job, workdir, append="", timeout=900):
    """Boot image_file with kernel/initrd and the job disk `job` (bytes) -> Result."""
    os.makedirs(workdir, exist_ok=True)
    overlay = os.path.join(workdir, "run.qcow2")
    job_file = os.path.join(workdir, "job.tar")
    out_file = os.path.join(workdir, "out.img")
    console = os.path.join(workdir, "console.log")
    output = os.path.join(workdir, "output.log")
    for path in (overlay, console, output):
        if os.path.exists(path):
            os.unlink(path)
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", os.path.abspath(image_file),
         "-F", "raw", overlay], timeout=60)
    with open(job_file, "wb") as f:
        f.write(job)
    with open(out_file, "wb") as f:
        f.truncate(OUT_DISK_BYTES)
    cmd = [QEMU] + QEMU_MACHINE + [
        "-display", "none", "-no-reboot", "-nic", "none", "-monitor", "none",
        "-kernel", kernel, "-initrd", initrd, "-append", (BASE_APPEND + " " + append).strip(),
        "-drive", "file=%s,format=qcow2,if=virtio" % overlay,
        "-drive", "file=%s,format=raw,if=virtio,readonly=on" % job_file,
        "-drive", "file=%s,format=raw,if=virtio" % out_file,
        "-serial", "file:" + console, "-serial", "file:" + output]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        wait_for_guest(proc, output, start + timeout)
    finally:
        stop(proc)
    seconds = round(time.monotonic() - start, 1)
    text = read_text(output)
    status = job_status(text)
    if status is None:
        tail = read_text(console)[-3000:]
        raise RigError("the guest job did not finish within %ds (QEMU %s); console tail:\n%s\n"
                       "job output:\n%s" % (timeout, proc.returncode, tail, text[-3000:]))
    files = read_out_disk(out_file)
    os.unlink(overlay)
    return Result(status, job_output(text), read_text(console), files, seconds)


def wait_for_guest(proc, output, deadline):
    """Until QEMU exits, or the job has ended and the guest had a minute to power off,
    or the deadline passes."""
    ended_at = None
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(1)
        if ended_at is None and job_status(read_text(output)) is not None:
            ended_at = time.monotonic()
        if ended_at is not None and time.monotonic() - ended_at > 60:
            log("guest did not power off a minute after its job ended: killing QEMU", "guest")
            return


def stop(proc):
    """Kill QEMU by its PID if it still runs (a stuck guest pauses instead of exiting)."""
    if proc.poll() is None:
        proc.kill()
    try:
        proc.wait(timeout=30)
    finally:
        if proc.stdout:
            proc.stdout.close()


def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").replace("\r\n", "\n")
    except OSError:
        return ""


def job_status(text):
    m = re.search(r"^MEMPROBE-JOB-END (\d+)\s*$", text, re.M)
    return int(m.group(1)) if m else None


def job_output(text):
    begin = text.find("MEMPROBE-JOB-BEGIN\n")
    end = text.rfind("MEMPROBE-JOB-END")
    return text[begin + len("MEMPROBE-JOB-BEGIN\n") if begin >= 0 else 0:end if end >= 0 else None]


def read_out_disk(path):
    files = {}
    with tarfile.open(path, mode="r:") as tar:
        for info in tar:
            if info.isfile():
                files[os.path.normpath(info.name)] = tar.extractfile(info).read()
    return files


def keep_result(result, dest):
    """Write a boot's files and logs under dest (replacing what was there)."""
    if os.path.exists(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    for name, data in result.files.items():
        path = os.path.join(dest, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    for name, text in (("output.log", result.output), ("console.log", result.console)):
        with open(os.path.join(dest, name), "w") as f:
            f.write(text)


def temp_workdir(cache):
    os.makedirs(cache, exist_ok=True)
    return tempfile.mkdtemp(prefix="boot-", dir=cache)
