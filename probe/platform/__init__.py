"""Platform flags, defined once, and the dispatch to one module per platform.

Common code never looks at sys.platform: it asks `impl` (psutil's _pslinux/_psbsd
layout) and these flags.
"""

import sys

LINUX = sys.platform.startswith("linux")
FREEBSD = sys.platform.startswith(("freebsd", "midnightbsd"))
NETBSD = sys.platform.startswith("netbsd")
OPENBSD = sys.platform.startswith("openbsd")
DRAGONFLY = sys.platform.startswith("dragonfly")
MACOS = sys.platform == "darwin"
BSD = FREEBSD or NETBSD or OPENBSD or DRAGONFLY

if LINUX:
    OS_NAME = "linux"
elif FREEBSD:
    OS_NAME = "freebsd"
elif NETBSD:
    OS_NAME = "netbsd"
elif OPENBSD:
    OS_NAME = "openbsd"
elif DRAGONFLY:
    OS_NAME = "dragonfly"
elif MACOS:
    OS_NAME = "macos"
else:
    OS_NAME = sys.platform

if LINUX:
    from probe.platform import linux as impl  # noqa: E402
elif BSD:
    from probe.platform import bsd as impl  # noqa: E402
else:
    from probe.platform import posix as impl  # noqa: E402

__all__ = ["LINUX", "FREEBSD", "NETBSD", "OPENBSD", "DRAGONFLY", "MACOS", "BSD", "OS_NAME", "impl"]
