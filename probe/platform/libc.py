"""ctypes bindings to the C library calls the probes make.

Every call records errno (use_errno) so a refusal can be reported by name. Constants come
from the `mmap` module (MIPS and the BSDs use other values) and the page size from
mmap.PAGESIZE, never literals.
"""

import ctypes
import mmap
import os

PAGESIZE = mmap.PAGESIZE
PROT_NONE = getattr(mmap, "PROT_NONE", 0)
PROT_READ = mmap.PROT_READ
PROT_WRITE = mmap.PROT_WRITE
PROT_EXEC = mmap.PROT_EXEC
MAP_SHARED = mmap.MAP_SHARED
MAP_PRIVATE = mmap.MAP_PRIVATE
MAP_ANONYMOUS = getattr(mmap, "MAP_ANONYMOUS", getattr(mmap, "MAP_ANON", None))

RW = PROT_READ | PROT_WRITE
RX = PROT_READ | PROT_EXEC
RWX = PROT_READ | PROT_WRITE | PROT_EXEC

MAP_FAILED = ctypes.c_void_p(-1).value


class SyscallError(OSError):
    """A libc call failed; `step` is filled in by the probe that made it."""


_libc = None


def libc():
    global _libc
    if _libc is None:
        # The interpreter already has the C library loaded: the main program handle finds
        # its symbols without find_library(), which runs ldconfig/gcc (slow, and absent
        # in minimal roots).
        _libc = ctypes.CDLL(None, use_errno=True)
        try:
            _declare(_libc)
        except AttributeError:
            from ctypes.util import find_library   # imports subprocess: the fallback only
            _libc = ctypes.CDLL(find_library("c"), use_errno=True)
            _declare(_libc)
    return _libc


def _declare(lib):
    lib.mmap.restype = ctypes.c_void_p
    lib.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                         ctypes.c_int, ctypes.c_long]
    lib.munmap.restype = ctypes.c_int
    lib.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    lib.mprotect.restype = ctypes.c_int
    lib.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    lib.malloc.restype = ctypes.c_void_p
    lib.malloc.argtypes = [ctypes.c_size_t]
    lib.free.restype = None
    lib.free.argtypes = [ctypes.c_void_p]


def symbol(name, restype, argtypes, lib=None):
    """A libc function, or None when this C library lacks it."""
    lib = lib or libc()
    try:
        fn = getattr(lib, name)
    except AttributeError:
        return None
    fn.restype = restype
    fn.argtypes = argtypes
    return fn


def check(result, failed=-1):
    if result == failed or (failed is MAP_FAILED and result is None):
        err = ctypes.get_errno()
        raise SyscallError(err, os.strerror(err))
    return result


def mmap_(length, prot, flags, fd=-1, offset=0):
    ctypes.set_errno(0)
    return check(libc().mmap(None, length, prot, flags, fd, offset), MAP_FAILED)


def munmap(addr, length):
    return check(libc().munmap(addr, length))


def mprotect(addr, length, prot):
    ctypes.set_errno(0)
    return check(libc().mprotect(addr, length, prot))


def malloc(size):
    addr = libc().malloc(size)
    if not addr:
        raise MemoryError("malloc(%d) failed" % size)
    return addr


def write(addr, data):
    ctypes.memmove(addr, data, len(data))


def read(addr, size):
    return ctypes.string_at(addr, size)


def page_floor(addr):
    return addr & ~(PAGESIZE - 1)


def round_pages(size):
    return (size + PAGESIZE - 1) & ~(PAGESIZE - 1)
