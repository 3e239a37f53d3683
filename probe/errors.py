"""One error hierarchy; the CLI turns each into one line on stderr and its exit code."""

import signal

# Exit codes, documented in the README and in `memprobe --help`.
EXIT_OK = 0
EXIT_USAGE = 1        # bad arguments, unreadable or invalid input
EXIT_DIFFERENT = 2    # diff: reports differ; check: an expectation does not hold
EXIT_UNDECIDED = 3    # check: an expectation could not be decided
EXIT_INTERNAL = 70    # a bug in memprobe itself (EX_SOFTWARE)
EXIT_INTERRUPTED = 130   # 128 + SIGINT; SIGHUP ends a run with 129, SIGTERM with 143
EXIT_SIGNAL_BASE = 128


class MemprobeError(Exception):
    """Base of every error memprobe reports to a user."""

    exit_code = EXIT_USAGE


class UsageError(MemprobeError):
    """The command line asks for something impossible."""


class InputError(MemprobeError):
    """A file given to memprobe cannot be used (missing, malformed, hostile)."""


class ReportError(InputError):
    """A report document is not a valid memprobe report."""


class HostError(MemprobeError):
    """The host cannot do what was asked (e.g. spawn isolation under an emulator)."""


class OutputError(InputError):
    """An output file or stdout could not be written completely."""


# Signals that end `run` cleanly (children killed and reaped, files removed): Terminated.
STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


class Terminated(BaseException):
    """SIGINT, SIGTERM or SIGHUP arrived: unwind (killing children, removing files) and
    exit with 128 + the signal number. A BaseException, like KeyboardInterrupt, so that no
    `except Exception` on the way swallows it."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum
