"""Root images for the guest rig: Debian roots made by mmdebstrap, labelled for
SELinux offline, with extra kernels from other suites, packed into an ext4 image
without loop devices (mke2fs -d keeps the security.selinux xattrs).

Each image lives in CACHE/<name>/: root.img (raw, sparse), kernels/<release>/{vmlinuz,initrd}
and image.json (what was built, how long it took, how much it downloaded).
"""

import hashlib
import json
import os
import shutil
import subprocess
import time

from debian_archive import RETRIES, RigError, du, log, run, sources_line

IMAGE_VERSION = 1      # bump when what goes into an image changes: images are rebuilt
IMAGE_SIZE = "3G"      # ext4 size; the file is sparse and uses what the root holds

PACKAGES = ["systemd-sysv", "udev", "dbus", "kmod", "e2fsprogs", "procps", "linux-image-amd64",
            "python3", "python3-yaml", "python3-psutil", "selinux-policy-default",
            "policycoreutils", "selinux-utils"]

# The oneshot unit that runs the job of the second disk (/dev/vdb, a raw tar): its
# output goes to the second serial port, free of kernel console noise; the files the
# job leaves in out/ go back as a tar written onto the third disk (/dev/vdc).
JOB_RUNNER = r"""#!/bin/sh
# memprobe guest rig: run the job of /dev/vdb once, then power off.
tty=/dev/ttyS1
i=0
while [ ! -b /dev/vdb ] && [ $i -lt 60 ]; do sleep 1; i=$((i+1)); done
mkdir -p /run/job && cd /run/job && tar -xf /dev/vdb && mkdir -p out
echo "MEMPROBE-JOB-BEGIN" > $tty
sh ./job.sh > $tty 2>&1 < /dev/null
rc=$?
[ -b /dev/vdc ] && tar -cf /dev/vdc -C out .
sync
echo "MEMPROBE-JOB-END $rc" > $tty
systemctl poweroff --no-block
"""

JOB_UNIT = """[Unit]
Description=memprobe guest rig job
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/memprobe-job
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
"""


class Image:
    def __init__(self, name, suite, extra_suite, extra_kernel):
        self.name = name
        self.suite = suite
        self.extra_suite = extra_suite      # a suite whose kernel is installed too
        self.extra_kernel = extra_kernel    # apt-get arguments installing that kernel

    def config_hash(self, mirror):
        key = json.dumps([IMAGE_VERSION, self.suite, self.extra_suite, self.extra_kernel,
                          PACKAGES, JOB_RUNNER, JOB_UNIT, mirror])
        return hashlib.sha256(key.encode()).hexdigest()[:16]


IMAGES = {i.name: i for i in [
    # bullseye's 5.10: before PR_SET_MDWE (6.3) and vm.memfd_noexec (6.3). The
    # metapackage is downgraded so that both kernels stay installed.
    Image("bookworm", "bookworm", "bullseye",
          ["--allow-downgrades", "linux-image-amd64/bullseye"]),
    # the newest 7.x in the archive that installs into trixie
    Image("trixie", "trixie", "trixie-backports",
          ["-t", "trixie-backports", "linux-image-amd64"]),
]}


class Store:
    def __init__(self, cache):
        self.cache = cache

    def dir(self, image):
        return os.path.join(self.cache, image.name)

    def meta(self, image):
        try:
            with open(os.path.join(self.dir(image), "image.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def ready(self, image, mirror=None):
        meta = self.meta(image)
        if not meta or not os.path.exists(os.path.join(self.dir(image), "root.img")):
            return False
        return mirror is None or meta.get("config") == image.config_hash(mirror)

    def kernel(self, image, series):
        """(release, vmlinuz, initrd) of the image's kernel whose release starts with series."""
        meta = self.meta(image) or {}
        for release in sorted(meta.get("kernels", []), reverse=True):
            if release.startswith(series):
                base = os.path.join(self.dir(image), "kernels", release)
                return release, os.path.join(base, "vmlinuz"), os.path.join(base, "initrd")
        raise RigError("image %s has no %s kernel (has %s)" % (
            image.name, series, ", ".join(meta.get("kernels", [])) or "none"))

    def build(self, image, mirror, force=False):
        if not force and self.ready(image, mirror):
            return self.meta(image)
        start = time.monotonic()
        base = self.dir(image)
        if os.path.exists(base):
            shutil.rmtree(base)
        os.makedirs(base)
        root = os.path.join(base, "root")
        log("building %s with mmdebstrap (several minutes)" % image.name, "guest")
        download = mmdebstrap(image, mirror, root, os.path.join(base, "apt-cache"))
        customize(root)
        label(root)
        kernels = take_kernels(root, os.path.join(base, "kernels"))
        root_bytes = du(root)
        img = os.path.join(base, "root.img")
        run(["mke2fs", "-q", "-t", "ext4", "-d", root, "-L", "root", img, IMAGE_SIZE], timeout=900)
        shutil.rmtree(root)
        meta = {"image_version": IMAGE_VERSION, "config": image.config_hash(mirror),
                "suite": image.suite, "extra_suite": image.extra_suite, "kernels": kernels,
                "download_bytes": download, "root_bytes": root_bytes,
                "image_bytes": du(base), "setup_seconds": round(time.monotonic() - start, 1)}
        with open(os.path.join(base, "image.json"), "w") as f:
            json.dump(meta, f, indent=1)
        log("%s ready in %.0fs: kernels %s, %.0f MB downloaded, image %.0f MB" % (
            image.name, meta["setup_seconds"], ", ".join(kernels), download / 1e6,
            meta["image_bytes"] / 1e6), "guest")
        return meta


def mmdebstrap(image, mirror, root, debs):
    """Build the root; returns the bytes of .deb files downloaded."""
    os.makedirs(debs, exist_ok=True)
    hook = 'chroot "$1" apt-get install -y -q --no-install-recommends %s' % " ".join(image.extra_kernel)
    # The downloaded packages are copied out before mmdebstrap empties the root's apt
    # cache, so that the download size can be measured.
    keep = 'for deb in "$1"/var/cache/apt/archives/*.deb; do [ ! -f "$deb" ] || cp "$deb" %s/; done' % debs
    cmd = ["mmdebstrap", "--variant=minbase", "--mode=root", "--include=" + ",".join(PACKAGES),
           "--aptopt=Acquire::Check-Valid-Until \"false\"", "--aptopt=Acquire::Retries \"3\"",
           "--customize-hook=" + hook, "--customize-hook=" + keep,
           image.suite, root, sources_line(mirror, image.suite),
           sources_line(mirror, image.extra_suite)]
    try:
        for attempt in range(1, RETRIES + 1):
            # mmdebstrap wants an empty directory: a failed attempt leaves a partial root.
            shutil.rmtree(root, ignore_errors=True)
            try:
                run(cmd, timeout=1800)
                break
            except RigError as exc:
                if attempt == RETRIES:
                    raise
                log("mmdebstrap failed (attempt %d/%d), retrying: %s" % (
                    attempt, RETRIES, str(exc)[-600:]), "guest")
                time.sleep(10 * attempt)
    finally:
        download = du(debs)
        shutil.rmtree(debs, ignore_errors=True)
    return download


def customize(root):
    with open(os.path.join(root, "etc", "hostname"), "w") as f:
        f.write("memprobe-guest\n")
    with open(os.path.join(root, "etc", "fstab"), "w") as f:
        f.write("/dev/vda / ext4 defaults 0 1\n")
    runner = os.path.join(root, "usr", "local", "sbin", "memprobe-job")
    os.makedirs(os.path.dirname(runner), exist_ok=True)
    with open(runner, "w") as f:
        f.write(JOB_RUNNER)
    os.chmod(runner, 0o755)
    units = os.path.join(root, "etc", "systemd", "system")
    with open(os.path.join(units, "memprobe-job.service"), "w") as f:
        f.write(JOB_UNIT)
    wants = os.path.join(units, "multi-user.target.wants")
    os.makedirs(wants, exist_ok=True)
    os.symlink("/etc/systemd/system/memprobe-job.service",
               os.path.join(wants, "memprobe-job.service"))


def label(root):
    """SELinux labels, offline: setfiles needs /proc inside the chroot."""
    proc = os.path.join(root, "proc")
    run(["mount", "-t", "proc", "proc", proc], timeout=60)
    try:
        run(["chroot", root, "/sbin/setfiles", "-F",
             "/etc/selinux/default/contexts/files/file_contexts", "/"], timeout=900)
    finally:
        subprocess.run(["umount", proc], check=False)


def take_kernels(root, dest):
    """Copy every installed kernel and its initrd out of /boot; their releases."""
    boot = os.path.join(root, "boot")
    releases = []
    for name in sorted(os.listdir(boot)):
        if not name.startswith("vmlinuz-"):
            continue
        release = name[len("vmlinuz-"):]
        initrd = os.path.join(boot, "initrd.img-" + release)
        if not os.path.exists(initrd):
            raise RigError("kernel %s has no initrd in the image" % release)
        os.makedirs(os.path.join(dest, release))
        shutil.copy2(os.path.join(boot, name), os.path.join(dest, release, "vmlinuz"))
        shutil.copy2(initrd, os.path.join(dest, release, "initrd"))
        releases.append(release)
    if not releases:
        raise RigError("no kernel installed in the image")
    return releases
