"""collect(): run the probes, detect the policies, attribute: the report dict that
`memprobe run`, `memprobe check --run` and the Python API write or check."""

from __future__ import annotations

import os

# Names for the type checker only: importing typing would slow `memprobe run` down.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Iterable, Optional

# Set in a run started through an unmarked interpreter copy: the original interpreter.
UNMARKED_ENV = "MEMPROBE_UNMARKED_COPY_OF"


def collect(only: Optional[Iterable[str]] = None, isolation: str = "fork", timeout: float = 10.0,
            arm_mode: str = "arm", progress: Optional[Callable[..., Any]] = None,
            jobs: Optional[int] = None) -> Dict[str, Any]:
    """Run the probes, detect the policies in force, attribute; the complete report dict."""
    from probe.engine import runner as _runner
    extra = {}

    def detect():
        # Imported only now: the probe children are forked from a smaller parent, and the
        # runner calls this while the last child (the flip timing) runs on another CPU.
        from probe import mechanisms as _mechanisms
        from probe.attribution import attribute  # noqa: F401 - loaded here, used below
        from probe.report import build  # noqa: F401
        extra["policies"] = _mechanisms.detect()

    arch_name, probes, measurements = _runner.run_all(only, isolation, timeout, arm_mode, progress,
                                                      jobs, detect)
    from probe.attribution import attribute as _attribution
    from probe.report import build as _report
    report = _report.build_report(arch_name, probes, measurements, isolation, timeout, extra)
    if os.environ.get(UNMARKED_ENV):
        report["process"]["unmarked_copy_of"] = os.environ[UNMARKED_ENV]
    _attribution.attribute(report)   # adds per-probe attribution, strategies, recommendation
    return _report.escape_undecodable(report)   # e.g. a hostname that is not UTF-8
