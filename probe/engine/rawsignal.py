"""Signal calls for the fork path, taking and returning plain numbers.

The signal module wraps each C function to turn every number it returns into an enum
member. In a freshly forked child the first of those conversions costs about 0.15 ms
(the enum machinery's pages are copied on first touch), and a run forks 18 children.
CPython's C module, _signal, has the same functions without the conversion.
"""

try:
    import _signal as _calls
except ImportError:  # pragma: no cover - an interpreter without CPython's split module
    import signal as _calls

SIG_DFL = _calls.SIG_DFL
SIG_BLOCK = getattr(_calls, "SIG_BLOCK", None)
SIG_UNBLOCK = getattr(_calls, "SIG_UNBLOCK", None)
SIG_SETMASK = getattr(_calls, "SIG_SETMASK", None)

getsignal = _calls.getsignal
set_handler = _calls.signal
# None where the platform has no per-thread signal mask.
pthread_sigmask = getattr(_calls, "pthread_sigmask", None)
