#!/usr/bin/env python3
"""Guest rig: memprobe on real Debian kernels booted under QEMU (TCG).

Cached root images (default ~/.cache/memprobe-guest, or $MEMPROBE_GUEST_CACHE):
bookworm (systemd 252, kernel 6.1, plus bullseye's 5.10) and trixie (systemd 257,
kernel 6.12, plus trixie-backports' 7.x), built with mmdebstrap from the Debian
archive the host's apt uses (its own apt state: the host's apt setup is not
touched). Each boot runs one job (tools/guest/cases.py) and brings back its output,
exit status and reports; the project itself is put on the job disk at every boot.

    rig.py setup [IMAGE...]       build the images (idempotent; cached)
    rig.py boot BOOT...           boot, run the job, keep the results in CACHE/results/BOOT
    rig.py publish BOOT...        copy the kept reports of BOOT into reports/
    rig.py info                   images, kernels, sizes and setup times

Needs root (mmdebstrap, chroot, mount), qemu-system-x86, qemu-utils and mmdebstrap.
"""

import argparse
import json
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
import boot as _boot  # noqa: E402
import cases  # noqa: E402
import image as _image  # noqa: E402
from debian_archive import RigError, du, host_mirror, log, run  # noqa: E402

PROJECT = os.path.dirname(os.path.dirname(HERE))
DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "memprobe-guest")
BOOT_TIMEOUT = 1200    # seconds for one boot and its job, under TCG on a busy machine
TOOLS = ["qemu-system-x86", "qemu-utils", "mmdebstrap"]

# The reports worth keeping in reports/, per boot: step -> file label.
PUBLISH = {
    "bookworm": ["mdwe", "hardened"],
    "trixie": ["mdwe", "hardened", "memfd-noexec-2"],
    "bookworm-selinux": ["selinux-initrc-off", "selinux-unconfined-off",
                         "selinux-unconfined-execmem", "selinux-unconfined-all"],
    "bookworm-5.10": ["plain", "mdwe"],
    "trixie-7": ["plain"],
}


class Rig:
    def __init__(self, cache=None):
        self.cache = os.path.abspath(cache or os.environ.get("MEMPROBE_GUEST_CACHE") or DEFAULT_CACHE)
        self.store = _image.Store(os.path.join(self.cache, "images"))

    def mirror(self):
        return host_mirror("MEMPROBE_GUEST_MIRROR")

    def setup(self, names=None, force=False):
        ensure_tools()
        mirror = self.mirror()
        return {n: self.store.build(_image.IMAGES[n], mirror, force) for n in names or _image.IMAGES}

    def ready(self, boot_name):
        b = cases.BOOTS[boot_name]
        return self.store.ready(_image.IMAGES[b.image])

    def results_dir(self, boot_name):
        return os.path.join(self.cache, "results", boot_name)

    def boot(self, boot_name, timeout=BOOT_TIMEOUT):
        """Boot BOOT, run its job -> boot.Result (also kept in results_dir)."""
        b = cases.BOOTS[boot_name]
        img = _image.IMAGES[b.image]
        if not self.store.ready(img):
            raise RigError("image %s is not built (rig.py setup %s)" % (img.name, img.name))
        release, kernel, initrd = self.store.kernel(img, b.kernel)
        provenance = "qemu-system:%s (TCG)" % _boot.qemu_version()
        job = _boot.job_tar(b.script(provenance), PROJECT, b.files)
        work = _boot.temp_workdir(os.path.join(self.cache, "work"))
        log("booting %s (kernel %s%s)" % (boot_name, release, ", SELinux enforcing" if b.selinux else ""),
            "guest")
        try:
            result = _boot.boot(os.path.join(self.store.dir(img), "root.img"), kernel, initrd, job,
                                work, _boot.SELINUX_APPEND if b.selinux else "", timeout)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        _boot.keep_result(result, self.results_dir(boot_name))
        log("%s: job exit %s after %.0fs" % (boot_name, result.status, result.seconds), "guest")
        return result


def ensure_tools():
    """Install Debian's QEMU and mmdebstrap if missing (root only)."""
    if all(shutil.which(t) for t in ("qemu-system-x86_64", "qemu-img", "mmdebstrap")):
        return
    if os.geteuid() != 0:
        raise RigError("missing tools and not root: apt-get install --no-install-recommends "
                       + " ".join(TOOLS))
    log("installing %s from Debian" % " ".join(TOOLS), "guest")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "-q",
           "--no-install-recommends"] + TOOLS
    try:
        run(cmd, env=env)
    except RigError:
        run(["apt-get", "update", "-q"], retries=3, env=env)
        run(cmd, retries=3, env=env)


def report_name(boot_name, step):
    return "linux-x86_64-guest-%s-%s.yaml" % (boot_name, step.replace("selinux-", ""))


def cmd_setup(rig, args):
    start = time.monotonic()
    rig.setup(args.images, args.force)
    log("images ready in %.0fs; %s uses %.0f MB" % (time.monotonic() - start, rig.cache,
                                                   du(rig.cache) / 1e6), "guest")
    return 0


def cmd_boot(rig, args):
    failed = 0
    for name in args.boots or list(cases.BOOTS):
        result = rig.boot(name, args.timeout)
        sys.stdout.write(result.output)
        failed += result.status != 0
    return 1 if failed else 0


def cmd_publish(rig, args):
    for name in args.boots or list(PUBLISH):
        kept = rig.results_dir(name)
        for step in PUBLISH[name]:
            src = os.path.join(kept, step + ".yaml")
            if not os.path.exists(src) or os.path.getsize(src) == 0:
                raise RigError("no report %s in %s (rig.py boot %s)" % (step, kept, name))
            dest = os.path.join(PROJECT, "reports", report_name(name, step))
            # References are shared: published as `memprobe redact` leaves them.
            run([sys.executable, "-m", "probe", "redact", src, "--output", dest],
                env=dict(os.environ, PYTHONPATH=PROJECT))
            os.chmod(dest, 0o644)
            log("wrote %s (redacted)" % dest, "guest")
    return 0


def cmd_info(rig, args):
    out = {"cache": rig.cache, "total_mb": round(du(rig.cache) / 1e6) if os.path.isdir(rig.cache) else 0,
           "images": {n: rig.store.meta(i) for n, i in _image.IMAGES.items()}}
    print(json.dumps(out, indent=1))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="rig.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", help="cache directory (default $MEMPROBE_GUEST_CACHE or %s)"
                        % DEFAULT_CACHE)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("setup", help="build the root images (cached)")
    p.add_argument("images", nargs="*", help="of %s (default: all)" % ", ".join(_image.IMAGES))
    p.add_argument("--force", action="store_true")
    p.set_defaults(fn=cmd_setup)
    p = sub.add_parser("boot", help="boot guests and run their jobs")
    p.add_argument("boots", nargs="*", help="of %s (default: all)" % ", ".join(cases.BOOTS))
    p.add_argument("--timeout", type=int, default=BOOT_TIMEOUT)
    p.set_defaults(fn=cmd_boot)
    p = sub.add_parser("publish", help="copy the kept reports into reports/")
    p.add_argument("boots", nargs="*")
    p.set_defaults(fn=cmd_publish)
    p = sub.add_parser("info", help="images, kernels, sizes")
    p.set_defaults(fn=cmd_info)
    args = parser.parse_args(argv)
    rig = Rig(args.cache)
    try:
        for name in getattr(args, "images", None) or []:
            if name not in _image.IMAGES:
                raise RigError("unknown image %s; known: %s" % (name, ", ".join(_image.IMAGES)))
        for name in getattr(args, "boots", None) or []:
            if name not in cases.BOOTS:
                raise RigError("unknown boot %s; known: %s" % (name, ", ".join(cases.BOOTS)))
        return args.fn(rig, args)
    except RigError as exc:
        sys.stderr.write("guest rig: error: %s\n" % exc)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
