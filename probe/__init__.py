"""memprobe: which code-loading strategies does this host allow, and what blocks the rest.

The public API (stable for report schema version 1; see the README's "Python API"):

    run(only=None, isolation="fork", timeout=10.0, jobs=None) -> dict   probe this host
    load(path_or_text) -> dict                 read a report through the hardened loader
    validate(report) -> list[str]              schema problems of a report (empty: valid)
    check(report, expectations) -> CheckResult what `memprobe check` decides
    diff(a, b) -> dict                         what `memprobe diff` finds

Errors: MemprobeError and its subclasses UsageError, InputError, ReportError, HostError.
`import probe` stays cheap: each function imports the engine when it is called.
"""

__version__ = "0.1.0"

from probe.vocab import SCHEMA_VERSION  # noqa: E402

from probe.errors import HostError, InputError, MemprobeError, ReportError, UsageError  # noqa: E402
from probe.api import CheckLine, CheckResult, check, diff, load, run, validate  # noqa: E402

__all__ = ["run", "load", "validate", "check", "diff", "CheckResult", "CheckLine", "SCHEMA_VERSION",
           "MemprobeError", "UsageError", "InputError", "ReportError", "HostError", "__version__"]
