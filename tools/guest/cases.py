"""What each guest boot runs: a list of steps, each one memprobe invocation under a
stated confinement, batched so that one boot (30-60 s of TCG) serves several checks.

A step leaves out/NAME.yaml (the report), out/NAME.err and out/NAME.rc in the guest;
the job also records the kernel release, the systemd version and SELinux's state.
"""

import shlex

UNCONFINED = "unconfined_u:unconfined_r:unconfined_t:s0"
MDWE = ["MemoryDenyWriteExecute=yes"]
# A typical hardened service's set (systemd.exec(5)).
HARDENED = ["MemoryDenyWriteExecute=yes", "NoNewPrivileges=yes", "SystemCallFilter=@system-service",
            "PrivateTmp=yes", "ProtectSystem=strict"]
EXEC_BOOLEANS = ["allow_execmem", "allow_execheap", "allow_execstack", "allow_execmod"]

PROLOGUE = r"""#!/bin/sh
# The project, installed from the job disk: the image stays valid whatever the tree.
set -u
cd /run/job
site=$(python3 -c 'import sys; print("/usr/local/lib/python%d.%d/dist-packages" % sys.version_info[:2])')
mkdir -p "$site" && cp -r src/probe "$site/"
printf '#!/usr/bin/python3\nimport sys\nfrom probe.cli import console_main\nsys.exit(console_main())\n' > /usr/local/bin/memprobe
chmod 755 /usr/local/bin/memprobe
. /etc/os-release
uname -r > out/kernel
systemctl --version | head -n1 | cut -d' ' -f2 > out/systemd
echo "$VERSION_CODENAME" > out/suite
(getenforce 2>/dev/null || echo absent) > out/selinux
export MEMPROBE_PROVENANCE=@PROVENANCE@
where="Debian $VERSION_CODENAME guest, kernel $(uname -r), systemd $(cat out/systemd), qemu-system TCG (tools/guest)"
step() {  # step NAME CONFINEMENT COMMAND...: one report, with its provenance
    name=$1; export MEMPROBE_PROVENANCE_NOTE="$where; $2"; shift 2
    "$@" > "out/$name.yaml" 2> "out/$name.err"
    rc=$?; echo $rc > "out/$name.rc"; echo "step $name: exit $rc"
}
unit() {  # unit PROPERTY... -- COMMAND...: COMMAND in a transient unit
    set -- --wait --pipe --collect --quiet -E MEMPROBE_PROVENANCE="$MEMPROBE_PROVENANCE" \
        -E MEMPROBE_PROVENANCE_NOTE="$MEMPROBE_PROVENANCE_NOTE" "$@"
    systemd-run "$@"
}
booleans() { getsebool @BOOLEANS@ | sed 's/ --> /=/' | tr '\n' ' ' | sed 's/ $//'; }
"""


def props(properties):
    return " ".join("-p " + shlex.quote(p) for p in properties)


def systemd_run_text(properties):
    """The confinement as a reader would type it."""
    return "systemd-run --wait --pipe %s memprobe run --output -" % props(properties)


def plain_step(name="plain"):
    return ('step %s "a oneshot unit with systemd\'s default properties" memprobe run --output -'
            % name)


def unit_step(name, properties):
    return "step %s %s unit %s memprobe run --output -" % (
        name, shlex.quote(systemd_run_text(properties)), props(properties))


def selinux_steps():
    """The oneshot unit's own domain and unconfined_t, as the execmem booleans are flipped."""
    # Not `systemd-run -p SELinuxContext=`: from the oneshot unit's initrc_t, systemd-run
    # --pipe fails ("Connection reset by peer": the bus may not pass initrc_t's file
    # descriptors on); runcon enters the same domain directly.
    lines = ['getsebool -a > out/booleans-default']
    for suffix, setting in (("off", None), ("execmem", "allow_execmem=1"),
                            ("all", " ".join(b + "=1" for b in EXEC_BOOLEANS))):
        if setting:
            lines.append("setsebool %s" % setting)
        lines.append('step selinux-initrc-%s "SELinux domain $(id -Z), booleans $(booleans)" '
                     'memprobe run --output -' % suffix)
        lines.append('step selinux-unconfined-%s "SELinux domain %s (runcon), booleans $(booleans)" '
                     'runcon %s memprobe run --output -' % (suffix, UNCONFINED, UNCONFINED))
    return lines


def memfd_noexec_steps():
    """Last in its boot: the sysctl cannot be lowered again."""
    return ["sysctl -q -w vm.memfd_noexec=2",
            'step memfd-noexec-2 "vm.memfd_noexec=2 set with sysctl in the initial namespace; '
            'a oneshot unit" memprobe run --output -']


class Boot:
    def __init__(self, name, image, kernel, lines, selinux=False, files=None):
        self.name = name
        self.image = image          # an image of image.IMAGES
        self.kernel = kernel        # release prefix of the kernel to boot
        self.lines = lines          # the job's steps (shell)
        self.selinux = selinux      # boot with SELinux enforcing
        self.files = files or {}    # extra files for the job disk

    def script(self, provenance):
        head = PROLOGUE.replace("@PROVENANCE@", shlex.quote(provenance)).replace(
            "@BOOLEANS@", " ".join(EXEC_BOOLEANS))
        return head + "\n".join(self.lines) + "\n"


# A service for `memprobe run --like-unit`: installed, never started.
DEMO_UNIT = """[Unit]
Description=a hardened service whose sandbox memprobe copies

[Service]
ExecStart=/bin/sleep infinity
User=nobody
MemoryDenyWriteExecute=yes
NoNewPrivileges=yes
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
PrivateTmp=yes
ProtectSystem=strict
PrivateDevices=yes
LockPersonality=yes
RestrictRealtime=yes
RestrictNamespaces=yes
"""


def like_unit_steps():
    return ["cp demo.service /etc/systemd/system/memprobe-demo.service && systemctl daemon-reload",
            "systemctl show memprobe-demo.service > out/demo-show",
            'step like-unit "memprobe run --like-unit memprobe-demo.service (systemd-run with its '
            'properties)" memprobe run --like-unit memprobe-demo.service --output -',
            'step like-unit-missing "a unit that does not exist" '
            'memprobe run --like-unit memprobe-no-such.service --output -']


def path_lookup_steps():
    """How systemd-run finds a command outside the caller's PATH (a virtualenv's memprobe)."""
    run = "systemd-run --wait --pipe --collect --quiet"
    return ["mkdir -p /opt/venv/bin && cp /usr/local/bin/memprobe /opt/venv/bin/memprobe-in-venv",
            "%s memprobe-in-venv list > out/path-bare.out 2> out/path-bare.err; "
            "echo $? > out/path-bare.rc" % run,
            "%s /opt/venv/bin/memprobe-in-venv list > out/path-absolute.out 2> out/path-absolute.err; "
            "echo $? > out/path-absolute.rc" % run]


SYSTEMD_LINES = ([plain_step(), unit_step("mdwe", MDWE), unit_step("hardened", HARDENED)]
                 + like_unit_steps() + path_lookup_steps())
SYSTEMD_FILES = {"demo.service": DEMO_UNIT}

BOOTS = {b.name: b for b in [
    Boot("bookworm", "bookworm", "6.1", SYSTEMD_LINES, files=SYSTEMD_FILES),
    Boot("trixie", "trixie", "6.12", SYSTEMD_LINES + memfd_noexec_steps(), files=SYSTEMD_FILES),
    Boot("bookworm-selinux", "bookworm", "6.1", selinux_steps(), selinux=True),
    Boot("bookworm-5.10", "bookworm", "5.10", [plain_step(), unit_step("mdwe", MDWE)]),
    Boot("trixie-7", "trixie", "7.", [plain_step()]),
]}
