"""Run the probes under the kernel's default PaX flags: an unmarked interpreter copy.

Hardened Gentoo marks some interpreters (user.pax.flags or PT_PAX_FLAGS) to exempt them
from MPROTECT, so probes run by a marked python show the exemption, not what an
unmarked program gets. A copy written afresh carries no xattr, and its PT_PAX_FLAGS
header (if any) is turned back into PT_GNU_STACK / PT_NULL, so the kernel applies its
defaults to it.
"""

import os
import shutil
import subprocess
import sys
import tempfile

from probe.policy import Source, Unavailable
from probe.policy import parse as _parse
from probe.policy import markings as _markings

_CHECK = ("import sys\n"
          "line = None\n"
          "try:\n"
          "    for l in open('/proc/self/status'):\n"
          "        if l.startswith('PaX:'):\n"
          "            line = l.split(':', 1)[1].strip()\n"
          "except OSError:\n"
          "    pass\n"
          "print(line or '')\n")


def _candidate_dirs(env):
    seen = []
    for d in (env.get("TMPDIR"), "/tmp", "/var/tmp", "/dev/shm",
              os.path.join(os.path.expanduser("~"), ".cache")):
        if d and d not in seen and os.path.isdir(d):
            seen.append(d)
    return seen


def _noexec_dirs(dirs):
    """The subset of dirs on noexec mounts (Linux mountinfo; elsewhere unknown)."""
    try:
        mounts = _parse.parse_mountinfo(Source().read_text("/proc/self/mountinfo"))
    except Unavailable:
        return set()
    out = set()
    for d in dirs:
        m = _parse.mount_for(mounts, os.path.realpath(d))
        if m is not None and _parse.is_noexec(m):
            out.add(d)
    return out


def child_env(base: "dict | None" = None) -> dict:
    """Environment for a child run through the copy. The copy finds its standard library
    through the pyvenv.cfg written beside it, which also holds under -I; PYTHONHOME and
    PYTHONPATH still say the same for a copy run without -I."""
    env = dict(os.environ if base is None else base)
    env["PYTHONHOME"] = "%s%s%s" % (sys.base_prefix, os.pathsep, sys.base_exec_prefix)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


def _write_venv_cfg(directory, exe):
    """Tell a copy in `directory` where its standard library is: the copy is not beside it.
    Read by the interpreter even under -I, unlike PYTHONHOME."""
    with open(os.path.join(directory, "pyvenv.cfg"), "w") as f:
        f.write("home = %s\ninclude-system-site-packages = true\nversion = %d.%d.%d\n"
                % ((os.path.dirname(exe),) + tuple(sys.version_info[:3])))


def unmarked_interpreter(executable: "str | None" = None, directory: "str | None" = None,
                         force: bool = False, verify: bool = True) -> dict:
    """A copy of the interpreter without PaX markings.

    Returns {'path': copy or None, 'dir': directory to remove afterwards (see discard),
    'env': environment to run the copy with (without -I), 'markings': what the original carries,
    'pax_status_line': the copy's PaX: line (when verified, on a PaX kernel),
    'reason': why there is no copy (path None) or None}.

    Without force, an interpreter with no markings gives no copy: it already runs
    with the kernel's defaults. With verify, the copy is run once; a copy that cannot
    start (a relative RPATH, a noexec or TPE-restricted directory) is discarded and
    the next directory tried.
    """
    from probe.policy.facts import interpreter_markings
    exe = os.path.realpath(executable or _running_binary())
    src = Source()
    marks = interpreter_markings(src, exe)
    out = {"path": None, "dir": None, "env": {}, "markings": {
        k: marks[k] for k in ("source", "xattr", "pt_pax_flags", "exempt", "forced")},
        "pax_status_line": None, "reason": None}
    if marks["source"] is None and not force:
        out["reason"] = ("%s carries no PaX markings: it already runs with the kernel's default "
                         "flags" % exe)
        return out
    try:
        data = _unmarked_bytes(exe)
    except (OSError, _markings.ELFError) as exc:
        out["reason"] = "cannot read %s as an ELF program: %s" % (exe, exc)
        return out
    dirs = [directory] if directory else _candidate_dirs(os.environ)
    _copy_into_first_usable(out, dirs, exe, data, verify)
    return out


def _copy_into_first_usable(out, dirs, exe, data, verify):
    """Write the copy into the first directory of `dirs` that gives a usable one, filling
    `out` with it; or set out['reason'] to why none did."""
    noexec = _noexec_dirs(dirs)
    failures = []
    for d in dirs:
        try:
            if d in noexec:
                raise _CopyFailed("%s is on a noexec mount" % d)
            tmp, path = _write_copy(d, exe, data)
            status_line = _verify(tmp, path, d) if verify else None
        except _CopyFailed as exc:
            failures.append(str(exc))
            continue
        if verify:
            out["pax_status_line"] = status_line
        env = child_env()
        out.update(path=path, dir=tmp, env={"PYTHONHOME": env["PYTHONHOME"],
                                            "PYTHONPATH": env["PYTHONPATH"]})
        return
    out["reason"] = "no usable unmarked copy: " + ("; ".join(failures) or "no temporary directory")


class _CopyFailed(Exception):
    """One directory gave no usable copy; str() says why."""


def _unmarked_bytes(exe):
    """The interpreter's bytes with its PT_PAX_FLAGS header edited away."""
    with open(exe, "rb") as f:
        data = bytearray(f.read())
    for offset, patch in _markings.unmark_elf(bytes(data[:65536])):
        data[offset:offset + len(patch)] = patch
    return data


def _write_copy(d, exe, data):
    """(its directory, path) of a fresh copy in a new directory under d."""
    try:
        tmp = tempfile.mkdtemp(prefix="memprobe-unmarked-", dir=d)
    except OSError as exc:
        raise _CopyFailed("cannot create a directory in %s: %s" % (d, exc.strerror))
    path = os.path.join(tmp, os.path.basename(exe))
    try:
        # Written afresh (not copied) so no xattr comes along.
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o755)
        _write_venv_cfg(tmp, exe)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _CopyFailed("cannot write %s: %s" % (path, exc.strerror))
    except BaseException:     # a signal: leave no copy behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp, path


def _verify(tmp, path, d):
    """Run the copy once: its PaX: line (or None); a copy that cannot start is removed."""
    try:
        proc = subprocess.run([path, "-I", "-c", _CHECK], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _CopyFailed("the copy in %s cannot run: %s" % (d, exc))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _CopyFailed("the copy in %s exits with %d: %s" % (
            d, proc.returncode, (proc.stderr.strip().splitlines() or [""])[-1]))
    return proc.stdout.strip() or None


def _running_binary():
    from probe.platform.posix import running_binary
    return running_binary() or sys.executable


def discard(info: "dict | None") -> None:
    """Remove the copy made by unmarked_interpreter()."""
    d = (info or {}).get("dir")
    if d and os.path.basename(d).startswith("memprobe-unmarked-"):
        shutil.rmtree(d, ignore_errors=True)


__all__ = ["unmarked_interpreter", "discard", "child_env", "Unavailable"]
