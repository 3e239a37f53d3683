"""Apply real kernel confinement to this process, then exec a command under it.

    python tests/helpers/confine.py [--mdwe] [--seccomp errno|kill|wx] [--noexec-shm] [--no-proc]
                             [--syscall-errno NAME=ERRNO] [--no-new-privs] [--uid UID]
                             -- COMMAND...

Each option uses the kernel's own mechanism (prctl, a libseccomp filter, a private mount
namespace, setuid): nothing is mocked. Exit status 77 with a one-line reason on stderr
means the kernel lacks the feature, which a test may turn into a skip.
"""

import argparse
import ctypes
import ctypes.util
import errno
import mmap
import os
import subprocess
import sys

UNAVAILABLE = 77

PR_SET_NO_NEW_PRIVS = 38
PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1
CLONE_NEWNS = 0x00020000

# libseccomp
SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_ACT_KILL_PROCESS = 0x80000000
SCMP_CMP_MASKED_EQ = 7
SHM_EXEC = 0o100000
PROT_WRITE, PROT_EXEC = mmap.PROT_WRITE, mmap.PROT_EXEC


def SCMP_ACT_ERRNO(x):
    return 0x00050000 | (x & 0xFFFF)


class ScmpArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


libc = ctypes.CDLL(None, use_errno=True)
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def unavailable(reason):
    sys.stderr.write("unavailable: %s\n" % reason)
    sys.exit(UNAVAILABLE)


def set_mdwe():
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        if err == errno.EINVAL:
            unavailable("PR_SET_MDWE needs Linux >= 6.3 (prctl returned EINVAL)")
        raise OSError(err, "PR_SET_MDWE: %s" % os.strerror(err))


def set_no_new_privs():
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "PR_SET_NO_NEW_PRIVS: %s" % os.strerror(err))


def _libseccomp():
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        seccomp = ctypes.CDLL(name, use_errno=True)
    except OSError:
        unavailable("libseccomp is not installed")
    seccomp.seccomp_init.restype = ctypes.c_void_p
    seccomp.seccomp_init.argtypes = [ctypes.c_uint32]
    seccomp.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    seccomp.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                               ctypes.c_uint, ctypes.POINTER(ScmpArgCmp)]
    seccomp.seccomp_load.argtypes = [ctypes.c_void_p]
    seccomp.seccomp_release.argtypes = [ctypes.c_void_p]
    return seccomp


# systemd's MemoryDenyWriteExecute= rules: W|X mappings and any mprotect adding X.
MDWE_RULES = [("mmap", 2, PROT_WRITE | PROT_EXEC), ("mmap2", 2, PROT_WRITE | PROT_EXEC),
              ("mprotect", 2, PROT_EXEC), ("pkey_mprotect", 2, PROT_EXEC), ("shmat", 2, SHM_EXEC)]
# FreeBSD's kern.elf64.allow_wx=0 rule (with EACCES): only W and X at the same time.
WX_RULES = [("mmap", 2, PROT_WRITE | PROT_EXEC), ("mmap2", 2, PROT_WRITE | PROT_EXEC),
            ("mprotect", 2, PROT_WRITE | PROT_EXEC), ("pkey_mprotect", 2, PROT_WRITE | PROT_EXEC)]


def mdwe_filter(action, rules=MDWE_RULES):
    """A seccomp filter applying `action` to each (syscall, arg, mask) of `rules`."""
    seccomp = _libseccomp()
    ctx = seccomp.seccomp_init(SCMP_ACT_ALLOW)
    if not ctx:
        unavailable("seccomp_init failed: the kernel has no seccomp filter support")
    for syscall, arg, mask in rules:
        nr = seccomp.seccomp_syscall_resolve_name(syscall.encode())
        if nr < 0:  # e.g. mmap2 does not exist on x86_64
            continue
        cmp = ScmpArgCmp(arg, SCMP_CMP_MASKED_EQ, mask, mask)
        rc = seccomp.seccomp_rule_add_array(ctx, action, nr, 1, ctypes.byref(cmp))
        if rc < 0:
            raise OSError(-rc, "seccomp_rule_add %s: %s" % (syscall, os.strerror(-rc)))
    _load(seccomp, ctx)


def _load(seccomp, ctx):
    rc = seccomp.seccomp_load(ctx)
    if rc < 0:
        if -rc == errno.EINVAL:
            unavailable("the kernel refused the seccomp filter (no CONFIG_SECCOMP_FILTER)")
        raise OSError(-rc, "seccomp_load: %s" % os.strerror(-rc))
    seccomp.seccomp_release(ctx)


def syscall_errno_filter(spec):
    """A filter making one system call fail with one errno (`memfd_create=ENOSYS`): what a
    container runtime's filter does to a call it does not know."""
    syscall, _, errno_name = spec.partition("=")
    seccomp = _libseccomp()
    ctx = seccomp.seccomp_init(SCMP_ACT_ALLOW)
    if not ctx:
        unavailable("seccomp_init failed: the kernel has no seccomp filter support")
    nr = seccomp.seccomp_syscall_resolve_name(syscall.encode())
    if nr < 0:
        unavailable("this architecture has no %s system call" % syscall)
    rc = seccomp.seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(getattr(errno, errno_name)), nr, 0, None)
    if rc < 0:
        raise OSError(-rc, "seccomp_rule_add %s: %s" % (syscall, os.strerror(-rc)))
    _load(seccomp, ctx)


def private_mounts():
    libc.unshare.argtypes = [ctypes.c_int]
    if libc.unshare(CLONE_NEWNS) != 0:
        err = ctypes.get_errno()
        if err in (errno.EPERM, errno.EINVAL):
            unavailable("cannot create a mount namespace: %s" % os.strerror(err))
        raise OSError(err, "unshare(CLONE_NEWNS): %s" % os.strerror(err))
    subprocess.run(["mount", "--make-rprivate", "/"], check=True)


def noexec_shm():
    """A private mount namespace where /dev/shm is remounted noexec; the host is untouched."""
    private_mounts()
    subprocess.run(["mount", "-o", "remount,noexec", "/dev/shm"], check=True)


def no_proc():
    """A private mount namespace where an empty tmpfs hides /proc; the host is untouched."""
    private_mounts()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "memprobe-no-proc", "/proc"], check=True)


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--mdwe", action="store_true")
    parser.add_argument("--seccomp", choices=("errno", "kill", "wx"))
    parser.add_argument("--noexec-shm", action="store_true")
    parser.add_argument("--no-proc", action="store_true")
    parser.add_argument("--syscall-errno", metavar="NAME=ERRNO")
    parser.add_argument("--no-new-privs", action="store_true")
    parser.add_argument("--uid", type=int)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command")
    if args.noexec_shm:
        noexec_shm()
    if args.no_proc:
        no_proc()
    if args.uid is not None:
        os.setgroups([])
        os.setgid(args.uid)
        os.setuid(args.uid)
    if args.no_new_privs or args.seccomp or args.syscall_errno:
        set_no_new_privs()    # what systemd sets too; also lets a non-root uid load a filter
    if args.mdwe:
        set_mdwe()
    if args.seccomp == "wx":
        mdwe_filter(SCMP_ACT_ERRNO(errno.EACCES), WX_RULES)
    elif args.seccomp:
        mdwe_filter(SCMP_ACT_ERRNO(errno.EPERM) if args.seccomp == "errno" else SCMP_ACT_KILL_PROCESS)
    if args.syscall_errno:
        syscall_errno_filter(args.syscall_errno)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
