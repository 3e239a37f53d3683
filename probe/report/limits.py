"""The bounds a loaded document must stay within, and the size limit's setting."""

import os

from probe.errors import InputError
from probe.report.safe_text import clean

DEFAULT_MAX_BYTES = 4 * 1024 * 1024
MAX_BYTES_SETTING = 1 << 30   # the largest MEMPROBE_MAX_REPORT_BYTES taken (1 GiB)
MAX_DEPTH = 64          # real reports nest about 6 levels
MAX_NODES = 100000      # real reports hold about 1,000 nodes
MAX_DIGITS = 100        # int() of a huge digit string is quadratic on Pythons without a limit
# The cheap YAML pre-screen bounds depth and node count from byte counts; only
# documents whose bound exceeds these run the exact (slower) event scan.
SCREEN_DEPTH = 2000     # libyaml's composer was seen to survive 10,000 levels


def max_bytes_default() -> int:
    """The size limit: MEMPROBE_MAX_REPORT_BYTES if set, a whole number of bytes from 1 to
    MAX_BYTES_SETTING; anything else is an input error rather than a silent default."""
    raw = os.environ.get("MEMPROBE_MAX_REPORT_BYTES")
    if not raw:
        return DEFAULT_MAX_BYTES
    text = raw.strip()
    value = int(text) if text.isdigit() and len(text) <= 12 else 0
    if not 0 < value <= MAX_BYTES_SETTING:
        raise InputError("MEMPROBE_MAX_REPORT_BYTES=%s: expected a whole number of bytes from 1 to %d"
                         % (clean(raw, 40), MAX_BYTES_SETTING))
    return value
