"""Reading an untrusted file's bytes: size-limited, and (where asked) regular files only."""

from __future__ import annotations

import os
import stat
import sys

from probe.errors import InputError, ReportError
from probe.report.limits import max_bytes_default
from probe.report.safe_text import display_name

# Names for the type checker only: importing typing would slow `memprobe run` down.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO, Optional

_READ_PIECE = 1 << 20


def _read_at_most(stream, limit):
    """Up to limit + 1 bytes, read in pieces: a large limit must not allocate it up front."""
    pieces = []
    left = limit + 1
    while left > 0:
        piece = stream.read(min(left, _READ_PIECE))
        if not piece:
            break
        pieces.append(piece)
        left -= len(piece)
    return b"".join(pieces)


def read_bytes(path: str, max_bytes: Optional[int] = None, regular_only: bool = False) -> bytes:
    """The bytes of a file (or stdin for '-'), refusing anything over max_bytes.

    regular_only: refuse anything but a regular file (a FIFO would block, a device
    could be endless) without reading from it; see open_regular().
    """
    limit = max_bytes_default() if max_bytes is None else max_bytes
    name = "<stdin>" if path == "-" else display_name(path)
    try:
        if path == "-":
            data = _read_stdin(limit)
        else:
            data = _read_file(path, name, limit, regular_only)
    except IsADirectoryError:
        raise InputError("%s: is a directory" % name) from None
    except OSError as exc:
        raise InputError("%s: cannot read: %s" % (name, exc.strerror or exc)) from None
    if len(data) > limit:
        raise ReportError("%s: more than %d bytes, above the limit for a report "
                          "(set MEMPROBE_MAX_REPORT_BYTES to raise it)" % (name, limit))
    return data


def _read_stdin(limit):
    if sys.stdin is None:    # started with stdin closed (`<&-`)
        raise InputError("<stdin>: cannot read: standard input is closed")
    return _read_at_most(sys.stdin.buffer, limit)


def _read_file(path, name, limit, regular_only):
    with (open_regular(path, name) if regular_only else open(path, "rb")) as stream:
        try:
            size = os.fstat(stream.fileno()).st_size
        except OSError:
            size = 0
        if size > limit:
            raise ReportError("%s: file is %d bytes, above the %d-byte limit for a report "
                              "(set MEMPROBE_MAX_REPORT_BYTES to raise it)" % (name, size, limit))
        return _read_at_most(stream, limit)


_FILE_KINDS = (
    (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


def file_kind(mode: int) -> Optional[str]:
    """'a FIFO', 'a character device', ... for a st_mode that is not a regular file, else None."""
    for test, words in _FILE_KINDS:
        if test(mode):
            return words
    return None if stat.S_ISREG(mode) else "not a regular file"


def open_regular(path: str, name: str) -> BinaryIO:
    """A binary stream on a regular file, or InputError naming what the path is instead.

    The caller has usually checked with stat() already; a file swapped for a FIFO or a
    device in between is opened non-blocking (so the open cannot hang) and refused
    after fstat(), before any read.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    try:
        kind = file_kind(os.fstat(fd).st_mode)
        if kind:
            raise InputError("%s: %s, not a regular file; not read" % (name, kind))
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
