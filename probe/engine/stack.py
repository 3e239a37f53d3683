"""Locate a page of the main thread's stack mapping for the stack probes.

The code must sit on the real stack mapping (that is what execstack policies look at),
yet below anything the running frames and the ctypes call will touch: the second page
of a mapping at least 64 KiB long is far below the live stack. The memory map says where
the mapping is; where it cannot be read (no /proc), mincore() walks the mapping down from
an address known to be on the initial stack.
"""

import ctypes

from probe.engine.context import Context
from probe.platform import libc as _libc
from probe.platform.libc import PAGESIZE

STACK_MIN = 64 * 1024
AT_RANDOM = 25            # auxv: 16 random bytes the kernel puts on the initial stack
WALK_LIMIT = 1 << 30      # bytes: a stack mapping is never this large


def stack_page(ctx: Context) -> int:
    """The address of a page low in the stack mapping; NotImplementedError where none can be found."""
    maps = ctx.impl.maps_snapshot()
    if maps is None:
        return _stack_page_by_mincore()
    marker = _environ_address()
    for start, end, perms, path in maps:
        if path == "[stack]" or (marker is not None and start <= marker < end and "w" in perms):
            if end - start < STACK_MIN:
                raise NotImplementedError("the stack mapping is only %d bytes" % (end - start))
            return start + PAGESIZE
    raise NotImplementedError("cannot locate the main thread's stack mapping")


def _environ_address():
    # The initial environment block lives on the main stack; used where maps have no
    # [stack] label.
    try:
        return ctypes.c_void_p.in_dll(_libc.libc(), "environ").value
    except ValueError:
        return None


def _stack_page_by_mincore():
    marker = _auxv_random_address()
    mincore = _libc.symbol("mincore", ctypes.c_int, [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p])
    if marker is None or mincore is None:
        raise NotImplementedError("no memory map and no initial-stack address to locate the stack")
    vec = ctypes.create_string_buffer(1)
    page = _libc.page_floor(marker)
    if mincore(page, PAGESIZE, vec) != 0:
        raise NotImplementedError("mincore() cannot see the initial stack to locate it")
    # mincore() fails with ENOMEM on an unmapped page: the gap below the stack mapping.
    floor = max(PAGESIZE, page - WALK_LIMIT)
    while page - PAGESIZE >= floor and mincore(page - PAGESIZE, PAGESIZE, vec) == 0:
        page -= PAGESIZE
    if marker - page < STACK_MIN:
        raise NotImplementedError("the stack mapping is only %d bytes" % (marker - page))
    return page + PAGESIZE


def _auxv_random_address():
    getauxval = _libc.symbol("getauxval", ctypes.c_ulong, [ctypes.c_ulong])
    if getauxval is None:
        return None
    return getauxval(AT_RANDOM) or None
