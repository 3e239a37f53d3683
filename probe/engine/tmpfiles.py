"""Temporary files and directories for the probe children, without the tempfile module.

The fork parent does not import tempfile: it brings in random and threading, whose at-fork
handlers every forked child would run (about 0.3 ms each).
"""

import errno
import os
import sys

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


# candidates -> the one found usable: a run asks three times (the children's directory,
# the noexec detector, the report's process section) and the answer holds for the run.
_FOUND = {}


def default_tmpdir() -> str:
    """The directory tempfile.gettempdir() picks, found the same way."""
    tempfile = sys.modules.get("tempfile")
    if tempfile is not None:
        return tempfile.gettempdir()      # loaded anyway: its answer, overrides included
    candidates = [os.environ[n] for n in ("TMPDIR", "TEMP", "TMP") if os.environ.get(n)]
    candidates += ["/tmp", "/var/tmp", "/usr/tmp"]
    try:
        candidates.append(os.getcwd())
    except OSError:
        candidates.append(os.curdir)
    key = tuple(candidates)
    if key not in _FOUND:
        _FOUND[key] = _first_usable(candidates)
    return _FOUND[key]


def _first_usable(candidates):
    for directory in candidates:
        directory = directory if directory == os.curdir else os.path.abspath(directory)
        try:
            fd, path = make_temp_file(directory, "memprobe-probe-")
        except FileExistsError:
            continue
        except OSError:
            continue                       # not writable: the next candidate
        os.close(fd)
        os.unlink(path)
        return directory
    raise FileNotFoundError(errno.ENOENT, "no usable temporary directory found in %s" % candidates)


def remove_tree(path: str) -> None:
    """Remove a directory the children filled, as shutil.rmtree(path, ignore_errors=True)
    does, without importing shutil (bz2, lzma and zlib come with it)."""
    for folder, dirs, files in os.walk(path, topdown=False):
        for name in files:
            _ignore_os_error(os.unlink, os.path.join(folder, name))
        for name in dirs:   # a link to a directory is listed here too: unlinked, not followed
            entry = os.path.join(folder, name)
            _ignore_os_error(os.unlink if os.path.islink(entry) else os.rmdir, entry)
    _ignore_os_error(os.rmdir, path)


def _ignore_os_error(remove, path):
    try:
        remove(path)
    except OSError:
        pass


def _temp_name(directory: str, prefix: str) -> str:
    return os.path.join(directory, prefix + os.urandom(6).hex())


def make_temp_file(directory: str, prefix: str) -> "tuple[int, str]":
    """(fd, path) of a new file only we can read, as tempfile.mkstemp() makes it."""
    for _ in range(100):
        path = _temp_name(directory, prefix)
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary file name in %s" % directory)


def make_temp_dir(prefix: str) -> str:
    """A new directory only we can use in default_tmpdir(), as tempfile.mkdtemp() makes it."""
    directory = default_tmpdir()
    for _ in range(100):
        path = _temp_name(directory, prefix)
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary directory name in %s" % directory)
