#!/usr/bin/env python3
"""Cross-architecture rig: run memprobe under foreign CPython interpreters.

For each target it builds a private root under a cache directory (default
~/.cache/memprobe-cross/<target>) from the Debian archive the host's apt already
uses: a private apt state (own sources list, lists, status file, download cache)
downloads the target's interpreter packages, which are unpacked with dpkg-deb -x.
Nothing system-wide changes except installing Debian's qemu-user-static (no
`dpkg --add-architecture`, no edit to the host's apt sources, no binfmt_misc).

Foreign CPUs run under qemu-user (`qemu-ARCH-static -L ROOT`); i386 and the x86_64
Debian interpreters run natively through the root's own dynamic loader.

    rig.py setup [TARGET...]         build the roots (idempotent; cached)
    rig.py check [TARGET...]         test subset + full `memprobe run` + verdict checks
    rig.py python TARGET [ARGS...]   run the target's interpreter (stdin/stdout passed)
    rig.py pytest TARGET [ARGS...]   run pytest under the target's interpreter
    rig.py report TARGET [-o PATH]   write a reference report
    rig.py info                      disk use and per-target metadata
    rig.py env TARGET                shell assignments for MEMPROBE_INTERPRETER etc.

Only the standard library is used: the rig runs on the host's python3 before
anything is installed.
"""

import argparse
import glob
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from debian_archive import (  # noqa: E402  (tools/debian_archive.py, shared by the rigs)
    KEYRING, RETRIES, RigError, du, log, run)
from debian_archive import host_mirror as _host_mirror  # noqa: E402
PROJECT = os.path.dirname(os.path.dirname(HERE))
RIG_VERSION = 3        # bump when the layout of a root changes: roots are rebuilt
DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "memprobe-cross")


class Target:
    def __init__(self, name, debarch, suite, python, triplet, arch, qemu=None, loader=None,
                 qemu_from=None, expect_machine=None):
        self.name = name
        self.debarch = debarch          # Debian architecture name
        self.suite = suite
        self.python = python            # X.Y
        self.triplet = triplet          # multiarch directory
        self.arch = arch                # memprobe's machine-code table entry expected
        self.qemu = qemu                # qemu binary name (None: run natively)
        self.loader = loader            # path of the dynamic loader inside the root
        self.qemu_from = qemu_from      # (suite, package) to take the qemu binary from
        self.expect_machine = expect_machine

    @property
    def emulated(self):
        return self.qemu is not None

    def packages(self):
        v = self.python
        # libffi comes with libpythonX.Y-stdlib (ctypes); libgcc-s1 has __clear_cache;
        # python3-yaml gives PyYAML (memprobe's runtime dependency; psutil is only
        # imported on the BSDs); python3-pytest runs the test subset in the guest;
        # python3-hypothesis: property tests; libseccomp2: the seccomp confinement tests
        # (only meaningful natively: qemu-user refuses a guest's seccomp filter).
        # base-files: /etc/os-release, else qemu -L falls back to the host's and the
        # report names the host's distribution.
        pkgs = ["python%s-minimal" % v, "libpython%s-stdlib" % v, "libgcc-s1", "base-files",
                "python3-yaml", "python3-pytest", "python3-hypothesis"]
        # The x86_64 roots also run the whole suite in a chroot: mount and unshare(1)
        # for the namespace tests, a shell.
        return pkgs if self.emulated else pkgs + ["libseccomp2", "mount", "util-linux", "dash"]


TARGETS = {t.name: t for t in [
    Target("arm64", "arm64", "bookworm", "3.11", "aarch64-linux-gnu", "aarch64",
           qemu="qemu-aarch64-static"),
    Target("armhf", "armhf", "bookworm", "3.11", "arm-linux-gnueabihf", "arm",
           qemu="qemu-arm-static"),
    Target("ppc64el", "ppc64el", "bookworm", "3.11", "powerpc64le-linux-gnu", "ppc64le",
           qemu="qemu-ppc64le-static"),
    Target("s390x", "s390x", "bookworm", "3.11", "s390x-linux-gnu", "s390x",
           qemu="qemu-s390x-static"),
    Target("mips64el", "mips64el", "bookworm", "3.11", "mips64el-linux-gnuabi64", "mips64el",
           qemu="qemu-mips64el-static"),
    Target("mipsel", "mipsel", "bookworm", "3.11", "mipsel-linux-gnu", "mipsel",
           qemu="qemu-mipsel-static"),
    Target("riscv64", "riscv64", "trixie", "3.13", "riscv64-linux-gnu", "riscv64",
           qemu="qemu-riscv64-static"),
    # bookworm's qemu 7.2 dies with SIGILL on sid's loong64 binaries: take the (static)
    # qemu-loongarch64 from trixie's qemu-user package, unpacked privately.
    Target("loong64", "loong64", "sid", "3.14", "loongarch64-linux-gnu", "loongarch64",
           qemu="qemu-loongarch64", qemu_from=("trixie", "qemu-user")),
    Target("i386", "i386", "bookworm", "3.11", "i386-linux-gnu", "i386",
           loader="usr/lib/i386-linux-gnu/ld-linux.so.2"),
    Target("amd64-trixie", "amd64", "trixie", "3.13", "x86_64-linux-gnu", "x86_64",
           loader="usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
    Target("amd64-sid", "amd64", "sid", "3.14", "x86_64-linux-gnu", "x86_64",
           loader="usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
]}
FOREIGN = ["arm64", "armhf", "riscv64", "ppc64el", "s390x", "mips64el", "mipsel", "loong64", "i386"]
NATIVE_DEBIAN = ["amd64-trixie", "amd64-sid"]


def host_mirror(root="/"):
    """URI of the Debian archive the host's apt uses (MEMPROBE_CROSS_MIRROR overrides)."""
    return _host_mirror("MEMPROBE_CROSS_MIRROR", root)


# --- running things ------------------------------------------------------------------

def ensure_qemu():
    """Install Debian's qemu-user-static if its binaries are missing (root only)."""
    if shutil.which("qemu-aarch64-static"):
        return
    if os.geteuid() != 0:
        raise RigError("qemu-user-static is not installed and this is not root: "
                       "apt-get install --no-install-recommends qemu-user-static")
    log("installing qemu-user-static from Debian")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "qemu-user-static"]
    try:
        run(cmd, env=env)
    except RigError:
        run(["apt-get", "update", "-q"], retries=RETRIES, env=env)
        run(cmd, retries=RETRIES, env=env)


def qemu_version(binary):
    """'qemu-aarch64 7.2.18' from `binary --version`."""
    out = run([binary, "--version"], timeout=30)
    m = re.search(r"^(\S+) version (\S+)", out, re.M)
    if not m:
        raise RigError("cannot read the version of %s: %r" % (binary, out[:200]))
    name = os.path.basename(m.group(1)).replace("-static", "")
    return "%s %s" % (name, m.group(2).rstrip(","))


_versions = {}


def qemu_version_cached(binary):
    if binary not in _versions:
        _versions[binary] = qemu_version(binary)
    return _versions[binary]


# --- private roots ---------------------------------------------------------------

class Rig:
    def __init__(self, cache=None):
        self.cache = os.path.abspath(cache or os.environ.get("MEMPROBE_CROSS_CACHE") or DEFAULT_CACHE)

    def dir(self, target):
        return os.path.join(self.cache, target.name)

    def root(self, target):
        return os.path.join(self.dir(target), "root")

    def stamp_path(self, target):
        return os.path.join(self.dir(target), "rig.json")

    def config_hash(self, target, mirror):
        key = json.dumps([RIG_VERSION, target.debarch, target.suite, target.python,
                          target.packages(), target.qemu, target.qemu_from, mirror])
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def meta(self, target):
        try:
            with open(self.stamp_path(target)) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def ready(self, target):
        meta = self.meta(target)
        return bool(meta and meta.get("rig_version") == RIG_VERSION
                    and os.path.exists(self.interpreter_script(target)))

    # apt with a private state directory, pointed at the host's archive
    def apt(self, state, debarch, args, retries=1, cwd=None):
        opts = [
            "-o", "Dir::Etc=" + os.path.join(state, "etc"),
            "-o", "Dir::Etc::SourceList=" + os.path.join(state, "etc", "sources.list"),
            "-o", "Dir::Etc::SourceParts=" + os.path.join(state, "etc", "sources.list.d"),
            "-o", "Dir::Etc::Preferences=" + os.path.join(state, "etc", "preferences"),
            "-o", "Dir::Etc::PreferencesParts=" + os.path.join(state, "etc", "preferences.d"),
            "-o", "Dir::Etc::Trusted=" + os.path.join(state, "etc", "trusted.gpg"),
            "-o", "Dir::Etc::TrustedParts=" + os.path.join(state, "etc", "trusted.gpg.d"),
            "-o", "Dir::State=" + os.path.join(state, "state"),
            "-o", "Dir::State::Lists=" + os.path.join(state, "state", "lists"),
            "-o", "Dir::State::status=" + os.path.join(state, "status"),
            "-o", "Dir::Cache=" + os.path.join(state, "cache"),
            "-o", "Dir::Cache::Archives=" + os.path.join(state, "cache", "archives"),
            "-o", "Dir::Log=" + os.path.join(state, "log"),
            "-o", "APT::Architecture=" + debarch,
            "-o", "APT::Architectures::=" + debarch,
            "-o", "Debug::NoLocking=1",
            "-o", "APT::Install-Recommends=0",
            "-o", "APT::Install-Suggests=0",
            "-o", "Acquire::Languages=none",
            "-o", "Acquire::Retries=3",
            "-o", "Acquire::http::Timeout=60",
            "-o", "APT::Sandbox::User=root",
            "-q",
        ]
        return run(["apt-get"] + opts + args, retries=retries, cwd=cwd,
                   env=dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C"))

    def make_state(self, state, mirror, suite):
        for sub in ("etc/sources.list.d", "etc/preferences.d", "etc/trusted.gpg.d",
                    "state/lists/partial", "cache/archives/partial", "log"):
            os.makedirs(os.path.join(state, sub), exist_ok=True)
        with open(os.path.join(state, "etc", "sources.list"), "w") as f:
            f.write("deb [signed-by=%s] %s %s main\n" % (KEYRING, mirror, suite))
        open(os.path.join(state, "status"), "a").close()

    def fetch(self, state, debarch, mirror, suite, packages, download_only=True):
        """Download `packages` (and their dependencies) into state's archive cache."""
        self.make_state(state, mirror, suite)
        self.apt(state, debarch, ["update"], retries=RETRIES)
        if download_only:
            self.apt(state, debarch, ["install", "-y", "--download-only"] + packages,
                     retries=RETRIES)
        debs = sorted(glob.glob(os.path.join(state, "cache", "archives", "*.deb")))
        if not debs:
            raise RigError("apt downloaded nothing for %s" % " ".join(packages))
        return debs

    def setup(self, target, force=False, keep_downloads=False):
        """Build target's root (once); returns its metadata."""
        mirror = host_mirror()
        h = self.config_hash(target, mirror)
        meta = self.meta(target)
        if not force and self.ready(target) and meta.get("config") == h:
            return meta
        start = time.monotonic()
        log("building %s (%s %s, Python %s)" % (target.name, target.debarch, target.suite,
                                                target.python))
        os.makedirs(self.cache, exist_ok=True)
        base = self.dir(target)
        if os.path.exists(base):
            shutil.rmtree(base)
        os.makedirs(base)
        state = os.path.join(base, "apt")
        debs = self.fetch(state, target.debarch, mirror, target.suite, target.packages())
        download = sum(os.path.getsize(p) for p in debs)
        tmp_root = os.path.join(base, "root.tmp")
        os.makedirs(tmp_root)
        for deb in debs:
            run(["dpkg-deb", "-x", deb, tmp_root], timeout=300)
        fix_root(tmp_root)
        emulator = None
        qemu_path = None
        if target.qemu_from:
            qemu_path = self.private_qemu(target, mirror)
        elif target.qemu:
            qemu_path = shutil.which(target.qemu)
            if not qemu_path:
                raise RigError("%s not found (is qemu-user-static installed?)" % target.qemu)
        if qemu_path:
            emulator = qemu_version(qemu_path)
        os.rename(tmp_root, self.root(target))
        meta_partial = {"qemu": qemu_path}
        self.write_scripts(target, meta_partial)
        meta_compiler = self.precompile(target)
        if not keep_downloads:
            shutil.rmtree(state)
        meta = {
            "rig_version": RIG_VERSION, "config": h, "target": target.name,
            "debarch": target.debarch, "suite": target.suite, "python": target.python,
            "arch": target.arch, "qemu": qemu_path, "emulator": emulator,
            "packages": [os.path.basename(p) for p in debs],
            "download_bytes": download, "setup_seconds": round(time.monotonic() - start, 1),
            "bytecode_compiled_by": meta_compiler,
        }
        self.write_scripts(target, meta)
        meta["root_bytes"] = du(self.root(target))
        with open(self.stamp_path(target), "w") as f:
            json.dump(meta, f, indent=1)
        log("%s ready in %.1fs: %d packages, %.1f MB downloaded, %.1f MB unpacked" % (
            target.name, meta["setup_seconds"], len(debs), download / 1e6, meta["root_bytes"] / 1e6))
        return meta

    def private_qemu(self, target, mirror):
        """The qemu binary taken from another suite's package, unpacked privately."""
        suite, package = target.qemu_from
        tools = os.path.join(self.cache, "qemu-%s" % suite)
        binary = os.path.join(tools, "usr", "bin", target.qemu)
        if os.access(binary, os.X_OK):
            return binary
        log("fetching %s from %s for %s" % (package, suite, target.qemu))
        state = tools + ".apt"
        if os.path.exists(state):
            shutil.rmtree(state)
        self.make_state(state, mirror, suite)
        self.apt(state, "amd64", ["update"], retries=RETRIES)
        # `download` fetches only the named package (its dependencies are not needed:
        # the user-mode emulators in trixie are statically linked).
        self.apt(state, "amd64", ["download", package], retries=RETRIES, cwd=state)
        debs = glob.glob(os.path.join(state, "*.deb"))
        if not debs:
            raise RigError("could not download %s from %s" % (package, suite))
        tmp = tempfile.mkdtemp(dir=self.cache)
        run(["dpkg-deb", "-x", debs[0], tmp], timeout=300)
        os.makedirs(os.path.join(tools, "usr", "bin"), exist_ok=True)
        shutil.copy2(os.path.join(tmp, "usr", "bin", target.qemu), binary)
        shutil.rmtree(tmp)
        shutil.rmtree(state)
        return binary

    def precompile(self, target):
        """Write the stdlib's .pyc files, as Debian's postinst would (py3compile).

        Without them every start under qemu re-compiles the stdlib (yaml import: 1.2 s
        instead of 0.1 s). Bytecode does not depend on the CPU, so a native interpreter
        with the same magic number compiles in seconds what the guest would take a
        minute for; the guest itself is the fallback."""
        root = self.root(target)
        dirs = [d for d in (os.path.join(root, "usr", "lib", "python" + target.python),
                            os.path.join(root, "usr", "lib", "python3", "dist-packages"))
                if os.path.isdir(d)]
        probe = "import importlib.util as u; print(u.MAGIC_NUMBER.hex())"
        guest = [self.interpreter_script(target)]
        magic = run(guest + ["-c", probe], timeout=120).strip()
        compiler = guest
        for cand in native_pythons(target.python, self):
            try:
                if run([cand, "-c", probe], timeout=60).strip() == magic:
                    compiler = [cand]
                    break
            except RigError:
                continue
        # Parallel compileall starts workers from sys.executable, which only a host
        # interpreter can: one job for the rig's own interpreters. Exit status 1 only
        # means some file did not compile (lib2to3 test data, ...).
        jobs = "-j0" if compiler[0] != guest[0] and not compiler[0].startswith(self.cache) else "-j1"
        subprocess.run(compiler + ["-m", "compileall", "-q", jobs] + dirs,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=1800,
                       env=dict(os.environ, LC_ALL="C"))
        return compiler[0]

    # how to start the target's interpreter
    def python_argv(self, target, meta=None):
        meta = meta or self.meta(target)
        root = self.root(target)
        exe = os.path.join(root, "usr", "bin", "python" + target.python)
        if target.emulated:
            return [meta["qemu"], "-L", root, exe]
        libpath = ":".join(os.path.join(root, d, target.triplet) for d in ("usr/lib", "lib"))
        return [os.path.join(root, target.loader), "--library-path", libpath, exe]

    def interpreter_script(self, target):
        return os.path.join(self.dir(target), "bin", "python")

    def write_scripts(self, target, meta):
        """bin/python: a host shell script that starts the target's interpreter. The
        guest can execute it (it is a host executable), so it serves as
        MEMPROBE_INTERPRETER for spawned workers."""
        bindir = os.path.join(self.dir(target), "bin")
        os.makedirs(bindir, exist_ok=True)
        argv = self.python_argv(target, meta)
        script = ("#!/bin/sh\n# memprobe cross rig: %s (%s %s)\n"
                  "unset LD_LIBRARY_PATH LD_PRELOAD PYTHONHOME\n"
                  "exec %s \"$@\"\n" % (target.name, target.debarch, target.suite,
                                         " ".join(shlex.quote(a) for a in argv)))
        path = os.path.join(bindir, "python")
        with open(path, "w") as f:
            f.write(script)
        os.chmod(path, 0o755)
        for alias in ("python3", "python" + target.python):
            link = os.path.join(bindir, alias)
            if not os.path.lexists(link):
                os.symlink("python", link)

    def env(self, target, meta=None):
        """Environment for running memprobe in the target."""
        meta = meta or self.meta(target)
        env = dict(os.environ)
        for var in ("LD_LIBRARY_PATH", "LD_PRELOAD", "PYTHONHOME", "PYTHONSTARTUP",
                    "VIRTUAL_ENV", "PYTHONSAFEPATH"):
            env.pop(var, None)
        env["PYTHONPATH"] = PROJECT
        env["PYTHONNOUSERSITE"] = "1"
        env["MEMPROBE_INTERPRETER"] = self.interpreter_script(target)
        if target.emulated:
            # asked now, not at setup: an apt upgrade may have replaced qemu since
            env["MEMPROBE_PROVENANCE"] = "qemu-user:" + qemu_version_cached(meta["qemu"])
        else:
            env.pop("MEMPROBE_PROVENANCE", None)
        env["MEMPROBE_CROSS_TARGET"] = target.name
        return env


def native_pythons(version, rig):
    """Host interpreters that may share `version`'s bytecode: the rig's own x86_64 roots,
    python3.X on PATH, pyenv builds."""
    out = []
    for t in NATIVE_DEBIAN:
        target = TARGETS[t]
        if target.python == version and rig.ready(target):
            out.append(rig.interpreter_script(target))
    found = shutil.which("python" + version)
    if found:
        out.append(found)
    out += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/%s.*/bin/python%s" % (version, version))))
    return out


def fix_root(root):
    """Make an unpacked root usable under `qemu -L` and through its own loader."""
    # merged /usr: packages ship files in both /lib and /usr/lib; the usrmerge links
    # come from base-files/usrmerge, which we do not install.
    for d in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        top, usr = os.path.join(root, d), os.path.join(root, "usr", d)
        if os.path.isdir(top) and not os.path.islink(top):
            if not os.path.isdir(usr):
                continue
            # fold /d into /usr/d, then link
            for name in os.listdir(top):
                src, dst = os.path.join(top, name), os.path.join(usr, name)
                if not os.path.lexists(dst):
                    os.rename(src, dst)
                elif os.path.isdir(src) and not os.path.islink(src):
                    merge_tree(src, dst)
            shutil.rmtree(top)
        if os.path.isdir(usr) and not os.path.lexists(top):
            os.symlink(os.path.join("usr", d), top)
    # Absolute symlinks would resolve on the host (qemu -L looks in the root first,
    # then falls back to the host path): rewrite them relative to the root.
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                dest = os.readlink(path)
                if dest.startswith("/"):
                    os.unlink(path)
                    os.symlink(os.path.relpath(root + dest, dirpath), path)


def merge_tree(src, dst):
    for name in os.listdir(src):
        s, d = os.path.join(src, name), os.path.join(dst, name)
        if os.path.isdir(s) and not os.path.islink(s) and os.path.isdir(d):
            merge_tree(s, d)
        elif not os.path.lexists(d):
            os.rename(s, d)


# --- checks under each target ------------------------------------------------------

# Tests that mean the same under an emulator: the machine-code table, classification
# of real signals, report building. (test_engine.py asserts x86_64 host verdicts;
# tests/test_cross.py checks the verdicts that must hold under emulation.)
GUEST_SUBSET = ["tests/test_arch.py", "tests/test_arch_descriptor.py", "tests/test_classify.py",
                "tests/test_report.py"]
# What qemu-user must show on every CPU (CROSS-ARCH.md): guest NX enforced, and the
# three ways of getting code to run working with the right values.
EXPECTED = {
    "exec_rw": ("crashed", None),
    "flip_rw_rx": ("allowed", 23),
    "map_rwx": ("allowed", 23),
    "repatch_rx": ("allowed", 42),
}
TARGET_SHAPE = {  # pointer bits, byte order
    "arm64": (64, "little"), "armhf": (32, "little"), "ppc64el": (64, "little"),
    "s390x": (64, "big"), "mips64el": (64, "little"), "mipsel": (32, "little"),
    "riscv64": (64, "little"), "loong64": (64, "little"), "i386": (32, "little"),
    "amd64-trixie": (64, "little"), "amd64-sid": (64, "little"),
}


def verify(report, target, arm_mode="arm", only=None):
    """Problems (strings) with a report produced under `target`; [] when it is right."""
    problems = []
    host = report.get("host", {})
    want_arch = "arm-thumb" if (target.arch == "arm" and arm_mode == "thumb") else target.arch
    if host.get("arch") != want_arch:
        problems.append("host.arch is %r, expected %r" % (host.get("arch"), want_arch))
    bits, order = TARGET_SHAPE[target.name]
    if host.get("pointer_bits") != bits:
        problems.append("pointer_bits %r, expected %r" % (host.get("pointer_bits"), bits))
    if host.get("byte_order") != order:
        problems.append("byte_order %r, expected %r" % (host.get("byte_order"), order))
    prov = host.get("provenance") or {}
    if target.emulated:
        emu = prov.get("emulator") or ""
        if prov.get("method") != "qemu-user" or not emu.startswith(target.qemu.replace("-static", "") + " "):
            problems.append("provenance %r does not name %s" % (prov, target.qemu))
    elif prov.get("method") != "native":
        problems.append("provenance %r, expected native" % (prov,))
    probes = report.get("probes", {})
    for pid, (outcome, value) in EXPECTED.items():
        if only and pid not in only:
            continue
        got = probes.get(pid)
        if got is None:
            problems.append("%s missing" % pid)
            continue
        if got.get("outcome") != outcome or (value is not None and got.get("value") != value):
            problems.append("%s: %s value %r (%s), expected %s %r" % (
                pid, got.get("outcome"), got.get("value"), got.get("detail"), outcome, value))
    if "exec_rw" in probes and probes["exec_rw"].get("signal") not in ("SIGSEGV", None) \
            and (not only or "exec_rw" in only):
        problems.append("exec_rw died of %s, expected SIGSEGV" % probes["exec_rw"].get("signal"))
    return problems


class Rigged:
    """Running things under one built target."""

    def __init__(self, rig, target):
        self.rig, self.target = rig, target
        self.meta = rig.meta(target)
        if not rig.ready(target):
            raise RigError("%s is not built (rig.py setup %s)" % (target.name, target.name))

    def command(self, args):
        return [self.rig.interpreter_script(self.target)] + list(args)

    def run(self, args, timeout=900, env=None, **kw):
        e = self.rig.env(self.target, self.meta)
        e.update(env or {})
        return subprocess.run(self.command(args), env=e, cwd=kw.pop("cwd", PROJECT),
                              timeout=timeout, **kw)

    def memprobe(self, args, timeout=600):
        """Run `memprobe run ARGS` in the guest -> (report dict, CompletedProcess)."""
        fd, path = tempfile.mkstemp(suffix=".json", prefix="memprobe-cross-")
        os.close(fd)
        try:
            proc = self.run(["-m", "probe", "run", "--format", "json", "--quiet", "--output", path]
                            + list(args), timeout=timeout, capture_output=True, text=True)
            report = None
            if proc.returncode == 0:
                with open(path) as f:
                    report = json.load(f)
            return report, proc
        finally:
            os.unlink(path)

    def pytest(self, args, timeout=1800, **kw):
        files = [f for f in GUEST_SUBSET if os.path.exists(os.path.join(PROJECT, f))]
        return self.run(["-m", "pytest", "-p", "no:cacheprovider"] + (list(args) or ["-q"] + files),
                        timeout=timeout, **kw)


def check(rig, target, log_out=sys.stdout):
    """Test subset, full fork run, spawn run (and Thumb on armhf). -> problems list."""
    r = Rigged(rig, target)
    problems = []
    t0 = time.monotonic()
    proc = r.pytest([], capture_output=True, text=True)
    tail = (proc.stdout or "").strip().splitlines()[-1:] or ["(no output)"]
    log_out.write("  %-12s test subset: %s (%.1fs)\n" % (target.name, tail[0], time.monotonic() - t0))
    if proc.returncode != 0:
        problems.append("test subset failed:\n" + (proc.stdout or "")[-4000:] + (proc.stderr or "")[-2000:])
    runs = [("fork", [], "arm", None), ("spawn", ["--isolation", "spawn", "--only"] + list(EXPECTED),
                                      "arm", list(EXPECTED))]
    if target.arch == "arm":
        runs += [("thumb", ["--arm-mode", "thumb"], "thumb", None)]
    for label, args, mode, only in runs:
        t0 = time.monotonic()
        report, proc = r.memprobe(args)
        if report is None:
            problems.append("%s run failed (exit %s): %s" % (label, proc.returncode, proc.stderr[-2000:]))
            continue
        got = verify(report, target, mode, only)
        problems += ["%s run: %s" % (label, p) for p in got]
        log_out.write("  %-12s %s run: arch %s, %s (%.1fs)\n" % (
            target.name, label, report["host"]["arch"],
            "ok" if not got else "%d problem(s)" % len(got), time.monotonic() - t0))
    return problems


# --- command line ------------------------------------------------------------------

def pick(names):
    if not names or names == ["all"]:
        return [TARGETS[n] for n in NATIVE_DEBIAN + FOREIGN]
    if names == ["foreign"]:
        return [TARGETS[n] for n in FOREIGN]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        raise RigError("unknown target(s) %s; known: %s" % (", ".join(unknown), ", ".join(TARGETS)))
    return [TARGETS[n] for n in names]


def cmd_setup(rig, args):
    targets = pick(args.targets)
    if any(t.emulated and not t.qemu_from for t in targets):
        ensure_qemu()
    start = time.monotonic()
    for t in targets:
        rig.setup(t, force=args.force, keep_downloads=args.keep_downloads)
    log("all ready in %.1fs; cache %s uses %.0f MB" % (time.monotonic() - start, rig.cache,
                                                      du(rig.cache) / 1e6))
    return 0


def cmd_check(rig, args):
    failed = 0
    for t in pick(args.targets):
        problems = check(rig, t)
        for p in problems:
            print("FAIL %s: %s" % (t.name, p))
        failed += bool(problems)
    print("%d target(s) checked, %d failed" % (len(pick(args.targets)), failed))
    return 1 if failed else 0


def cmd_python(rig, args):
    target = pick([args.target])[0]
    return Rigged(rig, target).run(args.args, timeout=None, cwd=os.getcwd()).returncode


def cmd_pytest(rig, args):
    target = pick([args.target])[0]
    return Rigged(rig, target).pytest(args.args, timeout=None).returncode


def cmd_report(rig, args):
    """Write the YAML report exactly as memprobe writes it, after checking it."""
    import yaml   # memprobe's own dependency: present wherever the project is installed
    target = pick([args.target])[0]
    r = Rigged(rig, target)
    extra = ["--arm-mode", args.arm_mode] if args.arm_mode else []
    fd, tmp = tempfile.mkstemp(suffix=".yaml", prefix="memprobe-cross-")
    os.close(fd)
    try:
        proc = r.run(["-m", "probe", "run", "--quiet", "--output", tmp] + extra,
                     timeout=600, capture_output=True, text=True,
                     env={"MEMPROBE_PROVENANCE_NOTE": provenance_note(target, args.arm_mode)})
        if proc.returncode != 0:
            raise RigError("memprobe run failed under %s: %s" % (target.name, proc.stderr[-2000:]))
        with open(tmp) as f:
            report = yaml.safe_load(f)
        problems = verify(report, target, args.arm_mode or "arm")
        if problems and not args.allow_problems:
            raise RigError("%s: report fails the checks: %s" % (target.name, "; ".join(problems)))
        out = args.output or os.path.join(PROJECT, "reports", report_name(report, target))
        shutil.move(tmp, out)
        os.chmod(out, 0o644)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    log("wrote %s" % out)
    return 0


def provenance_note(target, arm_mode=None):
    where = "Debian %s %s userland from a private root (tools/cross/rig.py)" % (target.suite, target.debarch)
    if target.emulated:
        how = ("under qemu-user on an x86_64 host; qemu enforces the guest's page protections "
               "but host policies (MDWE, seccomp, SELinux, PaX) are not what it exercises")
    else:
        how = "run natively through the root's own dynamic loader on an x86_64 kernel"
    mode = "; Thumb code (--arm-mode thumb)" if arm_mode == "thumb" else ""
    return "%s, %s%s" % (where, how, mode)


def report_name(report, target):
    """reports/<os>-<arch>-<label>.yaml; the label says how the report was produced."""
    label = ("qemu" if target.emulated else "native") + "-debian-" + target.suite
    return "%s-%s-%s.yaml" % (report["host"]["os"], report["host"]["arch"], label)


def chroot_command(rig, target, argv, cwd=PROJECT):
    """The whole test suite wants a real system: sys.executable that can be exec'd,
    /usr/bin/python3.X at its usual path. For the x86_64 roots a chroot gives exactly
    that, set up in a private mount namespace so nothing outside changes and every
    mount disappears with the process. Needs root."""
    root = rig.root(target)
    for name in ("passwd", "group"):   # no base-passwd in the root: the host's users
        shutil.copy2(os.path.join("/etc", name), os.path.join(root, "etc", name))
    binds = ["/proc", "/sys", "/dev", "/tmp", PROJECT]
    # The root is bound onto itself so that "/" is a mount point inside the chroot
    # (tests remount it private for their own namespaces).
    script = ["set -e", "mount --make-rprivate /",
              "mount --bind %s %s" % (shlex.quote(root), shlex.quote(root))]
    for path in binds:
        script.append("mkdir -p %s" % shlex.quote(root + path))
        script.append("mount --rbind %s %s" % (shlex.quote(path), shlex.quote(root + path)))
    script.append("cd %s" % shlex.quote(cwd))
    script.append("exec /usr/sbin/chroot %s /bin/sh -c %s" % (
        shlex.quote(root), shlex.quote("cd %s && exec %s" % (
            shlex.quote(cwd), " ".join(shlex.quote(a) for a in argv)))))
    return ["unshare", "--mount", "--fork", "--", "/bin/sh", "-c", "\n".join(script)]


def cmd_suite(rig, args):
    """The project's whole test suite under a native Debian interpreter (chroot)."""
    target = pick([args.target])[0]
    if target.emulated:
        raise RigError("suite runs only the x86_64/i386 roots natively; use check for %s" % target.name)
    if os.geteuid() != 0:
        raise RigError("suite needs root (a chroot in a private mount namespace)")
    Rigged(rig, target)   # built?
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": os.environ.get("HOME", "/root"),
           "LC_ALL": "C.UTF-8", "PYTHONPATH": PROJECT, "PYTHONNOUSERSITE": "1"}
    for var in ("CI", "TMPDIR", "PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED"):
        if var in os.environ:
            env[var] = os.environ[var]
    env.update({k: v for k, v in os.environ.items() if k.startswith("MEMPROBE_")
                and k not in ("MEMPROBE_INTERPRETER", "MEMPROBE_PROVENANCE")
                and not k.startswith("MEMPROBE_CROSS")})   # host paths, not in the chroot
    argv = ["/usr/bin/python" + target.python, "-m", "pytest", "-p", "no:cacheprovider"] + (
        list(args.args) or ["-q", "-ra", "tests"])
    return subprocess.run(chroot_command(rig, target, argv), env=env).returncode


def cmd_info(rig, args):
    rows = []
    for t in pick(args.targets):
        meta = rig.meta(t) or {}
        rows.append({"target": t.name, "suite": t.suite, "python": t.python,
                     "ready": rig.ready(t), "emulator": meta.get("emulator"),
                     "setup_seconds": meta.get("setup_seconds"),
                     "download_mb": round(meta.get("download_bytes", 0) / 1e6, 1),
                     "root_mb": round(du(rig.dir(t)) / 1e6, 1) if os.path.isdir(rig.dir(t)) else 0})
    if args.json:
        print(json.dumps({"cache": rig.cache, "total_mb": round(du(rig.cache) / 1e6, 1)
                          if os.path.isdir(rig.cache) else 0, "targets": rows}, indent=1))
        return 0
    print("%-13s %-9s %-5s %-6s %8s %9s %8s  %s" % ("target", "suite", "py", "ready", "setup_s",
                                                   "download", "disk_MB", "emulator"))
    for r in rows:
        print("%-13s %-9s %-5s %-6s %8s %8.1fM %8.1f  %s" % (
            r["target"], r["suite"], r["python"], r["ready"], r["setup_seconds"], r["download_mb"],
            r["root_mb"], r["emulator"] or "native (own loader)"))
    if os.path.isdir(rig.cache):
        print("cache %s: %.0f MB in total" % (rig.cache, du(rig.cache) / 1e6))
    return 0


def cmd_env(rig, args):
    target = pick([args.target])[0]
    env = rig.env(target)
    for k in ("MEMPROBE_INTERPRETER", "MEMPROBE_PROVENANCE", "PYTHONPATH"):
        if k in env:
            print("%s=%s" % (k, shlex.quote(env[k])))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="rig.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", help="cache directory (default $MEMPROBE_CROSS_CACHE or %s)"
                        % DEFAULT_CACHE)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("setup", help="build the private roots (cached)")
    p.add_argument("targets", nargs="*", help="targets (default: all); one of %s" % ", ".join(TARGETS))
    p.add_argument("--force", action="store_true", help="rebuild even if cached")
    p.add_argument("--keep-downloads", action="store_true", help="keep apt lists and .debs")
    p.set_defaults(fn=cmd_setup)
    p = sub.add_parser("check", help="test subset and memprobe runs under each target")
    p.add_argument("targets", nargs="*")
    p.set_defaults(fn=cmd_check)
    p = sub.add_parser("python", help="run the target's interpreter")
    p.add_argument("target")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(fn=cmd_python)
    p = sub.add_parser("pytest", help="run pytest under the target's interpreter")
    p.add_argument("target")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(fn=cmd_pytest)
    p = sub.add_parser("suite", help="the whole test suite in a chroot of an x86_64/i386 root (root only)")
    p.add_argument("target")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(fn=cmd_suite)
    p = sub.add_parser("report", help="write a reference report from the target")
    p.add_argument("target")
    p.add_argument("--output", "-o")
    p.add_argument("--arm-mode", choices=("arm", "thumb"))
    p.add_argument("--allow-problems", action="store_true")
    p.set_defaults(fn=cmd_report)
    p = sub.add_parser("info", help="per-target setup time and disk use")
    p.add_argument("targets", nargs="*")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_info)
    p = sub.add_parser("env", help="shell assignments for running memprobe by hand")
    p.add_argument("target")
    p.set_defaults(fn=cmd_env)
    args = parser.parse_args(argv)
    rig = Rig(args.cache)
    try:
        return args.fn(rig, args)
    except RigError as exc:
        sys.stderr.write("rig: error: %s\n" % exc)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
