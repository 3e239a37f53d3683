"""The default file name of a `memprobe run` report.

A full, unconfined run owns reports/<os>-<arch>-<host>.yaml. A subset run (`--only`) or a
run whose process was confined (a seccomp filter, MDWE, a non-root user, a personality,
an unmarked interpreter copy) gets a name that says so, so it never silently replaces
the full report of the same host.
"""

import hashlib
import os
from typing import List, Optional, Sequence, Tuple

from probe.report import build as _report

# Longest "only-..." part spelled out probe by probe; beyond it the ids are hashed.
_MAX_ONLY_SPELLED = 60


def run_conditions(report: dict, only: Optional[Sequence[str]] = None) -> List[str]:
    """Name parts for whatever makes this run not the host's full, unconfined report."""
    process = report.get("process") or {}
    parts = []
    if only and not _covers_every_probe(only):
        parts.append(_only_part(only))
    if process.get("seccomp_mode"):
        parts.append("seccomp")
    if process.get("mdwe"):
        parts.append("mdwe")
    # A redacted report keeps uid 0 and turns other uids into null: both say non-root.
    if process.get("euid") != 0:
        parts.append("nonroot")
    if process.get("personality") not in (None, "0x00000000"):
        parts.append("personality")
    if process.get("unmarked_copy_of"):
        parts.append("pax-defaults")
    return parts


def _covers_every_probe(only: Sequence[str]) -> bool:
    from probe.engine import probes as _probes
    return {p.id for p in _probes.REGISTRY} <= set(only)


def _only_part(only: Sequence[str]) -> str:
    ids = sorted(set(only))
    spelled = "+".join(ids)
    if len(spelled) <= _MAX_ONLY_SPELLED:
        return "only-" + spelled
    digest = hashlib.sha256(spelled.encode("utf-8")).hexdigest()[:8]
    return "only-%d-probes-%s" % (len(ids), digest)


def default_run_path(report: dict, fmt: str = "yaml",
                     only: Optional[Sequence[str]] = None) -> Tuple[str, str, List[str]]:
    """(path for this run, path of the host's full report, the conditions that differ)."""
    full = _report.default_path(report, fmt)
    conditions = run_conditions(report, only)
    if not conditions:
        return full, full, conditions
    stem, ext = os.path.splitext(full)
    return "%s-%s%s" % (stem, "-".join(conditions), ext), full, conditions
