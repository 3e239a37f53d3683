"""Every byte memprobe writes goes through here: output files and stdout.

Files: a path that is not a regular file (a device, a FIFO, a socket, /dev/stdout) is written
into, never replaced. A regular file (or a new one) is replaced atomically: a temporary file in
the same directory as the real target (symlinks are followed, the link stays), renamed over it,
so a crash leaves the old file or the new one. An existing file keeps its mode and, where the
writer may set them, its owner and group; a new file gets 0666 & ~umask. Missing parent
directories are created.

Stdout: every write is checked to the last byte; a short write, ENOSPC, EFBIG or a closed stdout
is an OutputError (one line, exit 1), so a cut report never ends with exit status 0.
"""

from __future__ import annotations

import codecs
import errno
import os
import stat
import sys

from probe.errors import OutputError, UsageError

# Names for the type checker only: importing typing would slow `memprobe run` down.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Iterable, Optional, Sequence, Union

# Standard descriptors that were closed when memprobe started (see guard_standard_fds).
_CLOSED_AT_START = set()
_CHUNK = 1 << 16
_MAX_LINKS = 40          # the kernel's own limit on symlinks followed in one lookup (ELOOP)
_TEMP_NAME_KEEP = 32     # bytes of the target's name kept in its temporary name (NAME_MAX is 255)

REPORT_FORMATS = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}
MATRIX_FORMATS = {".md": "markdown", ".markdown": "markdown", ".csv": "csv", ".json": "json",
                  ".html": "html", ".htm": "html"}


def choose_format(path: Optional[str], requested: Optional[str], by_extension: Optional[Dict[str, str]] = None,
                  default: str = "yaml", option: str = "--output") -> str:
    """The output format: --format when given, else the one the file name implies, else
    `default`; a file name that implies another format than --format is a usage error."""
    by_extension = REPORT_FORMATS if by_extension is None else by_extension
    implied = None
    if path not in (None, "-"):
        implied = by_extension.get(os.path.splitext(path)[1].lower())
    if requested and implied and requested != implied:
        raise UsageError("--format %s contradicts %s %s, whose extension means %s"
                         % (requested, option, _name(path), implied))
    return requested or implied or default


def guard_standard_fds() -> None:
    """Put /dev/null on closed descriptors 0-2 and remember which were closed.

    Otherwise the next file memprobe opens would get number 1, and a later write meant for
    stdout (or a child's output) would land in it. Reading a closed stdin and writing a closed
    stdout stay errors (see write_stdout and the loader)."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            continue
        except OSError:
            _CLOSED_AT_START.add(fd)
        try:
            null = os.open(os.devnull, os.O_RDWR)
        except OSError:
            continue        # no /dev/null (a bare chroot): the descriptor stays closed
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
    if 2 in _CLOSED_AT_START and sys.stderr is None:
        sys.stderr = open(2, "w", closefd=False)


def raise_first(failures: Sequence[Exception]) -> None:
    """End a command whose files did not all get written: one line per failure, exit 1."""
    for failure in failures[1:]:
        sys.stderr.write("memprobe: error: %s\n" % failure)
    if failures:
        raise failures[0]


def silence_stdout() -> None:
    """After EPIPE: point fd 1 at /dev/null so the interpreter's final flush cannot fail."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)
    except OSError:
        pass


# --------------------------------------------------------------------------- stdout

def stdout_takes_utf8() -> bool:
    """Whether stdout encodes as UTF-8. YAML and JSON documents are UTF-8: on any other
    encoding a report must be written with its non-ASCII characters escaped."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    try:
        return codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return False


def write_stdout(content: Union[str, Iterable[str]]) -> None:
    """Write a str (or an iterable of str) to stdout completely, or raise OutputError.

    BrokenPipeError is left to the caller: the reader went away, which the command line ends
    quietly with exit status 1."""
    stream = sys.stdout
    if stream is None or 1 in _CLOSED_AT_START:
        raise OutputError("cannot write to stdout: it is closed")
    chunks = [content] if isinstance(content, str) else content
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        _write_chunks(stream, chunks, encoding)
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputError("cannot write to stdout: %s" % _reason(exc)) from None
    except UnicodeEncodeError as exc:
        raise OutputError("cannot write to stdout: its encoding %s cannot carry %r"
                          % (encoding, exc.object[exc.start:exc.end])) from None


def _write_chunks(stream, chunks, encoding):
    """Through the stream's descriptor where it has one (short writes followed up), else
    through the stream itself."""
    try:
        fd = stream.fileno()
    except (AttributeError, ValueError, OSError):
        fd = None          # not a real file (an in-memory stream): it has no short writes
    if fd is None:
        for chunk in chunks:
            stream.write(chunk)
        stream.flush()
        return
    errors = getattr(stream, "errors", None) or "strict"
    stream.flush()     # whatever was written through the stream before goes first
    for chunk in chunks:
        _write_fd(fd, chunk.encode(encoding, errors))


def _write_fd(fd, data):
    """os.write until every byte is out: a short write is followed up, and a write that makes
    no progress is an error, not a silent loss."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view[:_CHUNK])
        except BlockingIOError:
            import select
            select.select([], [fd], [])     # a non-blocking descriptor: wait, then go on
            continue
        if written <= 0:
            raise OSError(errno.EIO, "short write: %d bytes not written" % len(view))
        view = view[written:]


# --------------------------------------------------------------------------- files

def refuse_directory(path: Optional[str]) -> None:
    """Fail before any work when an output path names a directory: nothing can be written."""
    if path not in (None, "-") and (path.endswith(os.sep) or os.path.isdir(path)):
        raise OutputError("%s: cannot write: is a directory" % _name(path))


def write_file(path: str, content: Union[str, Iterable[str]]) -> None:
    """Write a str (or an iterable of str) as UTF-8 to `path` (see the module docstring)."""
    refuse_directory(path)
    try:
        target, through_proc = _resolve(path)
        info = _stat_or_none(target)
    except OSError as exc:
        raise _cannot(path, exc) from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise OutputError("%s: cannot write: is a directory" % _name(path))
    chunks = [content] if isinstance(content, str) else content
    try:
        if through_proc or (info is not None and not stat.S_ISREG(info.st_mode)):
            _write_into(target, info, chunks)
        else:
            _replace(target, info, chunks)
    except OSError as exc:
        raise _cannot(path, exc) from None


def _resolve(path):
    """(the file a write to `path` reaches, whether a /proc link leads there).

    Symlinks are followed one at a time so a link is never replaced by a file. A link through
    /proc (/dev/stdout, /dev/fd/N, /proc/self/fd/N) names an open file, which is written into:
    its readlink text is only a description."""
    current = os.path.abspath(path)
    for _ in range(_MAX_LINKS):
        parent = os.path.realpath(os.path.dirname(current))
        current = os.path.join(parent, os.path.basename(current))
        if _on_procfs(parent):
            return current, True
        if not os.path.islink(current):
            return current, False
        current = os.path.join(parent, os.readlink(current))
    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))


def _stat_or_none(target):
    try:
        return os.stat(target)
    except FileNotFoundError:
        return None


def _on_procfs(directory):
    if directory == "/proc" or directory.startswith("/proc/"):
        return True
    # Compared with /proc/self, not /proc: under qemu-user with a guest root, "/proc" may be
    # the guest root's empty directory on the same file system as the output directory.
    try:
        return os.stat(directory).st_dev == os.stat("/proc/self").st_dev
    except OSError:
        return False


def _write_into(target, info, chunks):
    """Write into an existing non-regular file (or an open file named through /proc)."""
    if info is not None and stat.S_ISSOCK(info.st_mode):
        import socket
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(target)
            for chunk in chunks:
                sock.sendall(chunk.encode("utf-8"))
        return
    flags = os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC
    if info is not None and stat.S_ISREG(info.st_mode):
        flags |= os.O_APPEND    # an open regular file (/dev/stdout > file): add, never truncate
    fd = os.open(target, flags)   # a FIFO blocks here until its reader opens it
    try:
        for chunk in chunks:
            _write_fd(fd, chunk.encode("utf-8"))
    finally:
        os.close(fd)


def _replace(target, info, chunks):
    directory = os.path.dirname(target)
    if info is None:
        os.makedirs(directory, exist_ok=True)
    temp, fd = _create_temp(directory, os.path.basename(target))
    try:
        if info is not None:
            _keep_owner_and_mode(fd, info)
        for chunk in chunks:
            _write_fd(fd, chunk.encode("utf-8"))
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(temp, target)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
    _sync_directory(directory)


def _create_temp(directory, name):
    """A new file next to the target; mode 0666 lets the umask (or a default ACL) decide the
    permissions, as for any file a program creates. The name keeps a bounded part of the
    target's name, so a 255-byte target name still fits NAME_MAX."""
    stem = os.fsencode(name)[:_TEMP_NAME_KEEP]
    for _ in range(100):
        temp = os.path.join(os.fsencode(directory),
                            b".%s.%s.tmp" % (stem, os.urandom(6).hex().encode()))
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW,
                         0o666)
        except FileExistsError:
            continue
        return temp, fd
    raise OSError(errno.EEXIST, "no free temporary name")


def _keep_owner_and_mode(fd, info):
    """Give the new file the old one's owner and group where this process may (root may;
    anyone may keep a group they belong to), then its mode (chown clears set-id bits)."""
    own = os.fstat(fd)
    if (own.st_uid, own.st_gid) != (info.st_uid, info.st_gid):
        for uid in (info.st_uid, -1):
            try:
                os.fchown(fd, uid, info.st_gid)
                break
            except PermissionError:
                continue
    os.fchmod(fd, stat.S_IMODE(info.st_mode))


def _sync_directory(directory):
    """Make the rename durable; a file system that cannot sync a directory is no error."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def display(path: str) -> str:
    """A path as one printable line (a file name may hold any byte)."""
    from probe.report.safe_text import display_name
    return display_name(path)


_name = display


def _reason(exc):
    return exc.strerror or str(exc)


def _cannot(path, exc):
    return OutputError("%s: cannot write: %s" % (_name(path), _reason(exc)))
