"""One error hierarchy; the CLI turns each into one line on stderr and its exit code."""

# Exit codes, documented in the README and in `memprobe --help`.
EXIT_OK = 0
EXIT_USAGE = 1        # bad arguments, unreadable or invalid input
EXIT_DIFFERENT = 2    # diff: reports differ; check: an expectation does not hold
EXIT_UNDECIDED = 3    # check: an expectation could not be decided
EXIT_INTERNAL = 70    # a bug in memprobe itself (EX_SOFTWARE)
EXIT_INTERRUPTED = 130


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
