"""What the pytest plugin knows about the host: one report, and the skip reasons it gives.

Imported only when a session has a test marked memprobe_requires (or asks for a
report with --memprobe-report / --memprobe-save), so unmarked projects never load it.
"""

from __future__ import annotations

import time

import pytest

import probe
from probe.render import text as _render
from probe.report.load import clean

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Sequence

    Requirements = Sequence[tuple[str, Sequence[str]]]

SATISFIED = ("works", "enforced")
from probe.vocab import BLOCKING_OUTCOMES  # noqa: E402


def known_names() -> list[str]:
    """Strategy and capability names this memprobe writes, strategies first."""
    from probe.attribution.attribute import STRATEGIES

    strategies = [entry[0] for entry in STRATEGIES]
    return strategies + [c for c in _render.CAPABILITY_ORDER if c not in strategies]


def strategy_probes(name: str) -> tuple[str, ...]:
    """The probes behind a strategy, whether or not a report ran them."""
    from probe.attribution.attribute import STRATEGIES

    return next((tuple(entry[1]) for entry in STRATEGIES if entry[0] == name), ())


def check_names(nodeid: str, requirements: Requirements) -> None:
    """A misspelt name must stop the session, not pass as a skip."""
    known = known_names()
    for _, names in requirements:
        for name in names:
            if name not in known:
                raise pytest.UsageError("%s: memprobe_requires: unknown strategy or capability %r "
                                        "(known: %s)" % (nodeid, name, ", ".join(known)))


class Host:
    """A report and where it came from."""

    def __init__(self, report: dict[str, Any], origin: str) -> None:
        self.report = report
        self.origin = origin   # "report PATH" or "probed in N s"

    @classmethod
    def obtain(cls, report_path: str | None = None, save_path: str | None = None) -> Host:
        if report_path:
            try:
                host = cls(probe.load(report_path), "report %s" % clean(report_path))
            except probe.MemprobeError as exc:
                raise pytest.UsageError("--memprobe-report: %s" % exc) from None
        else:
            started = time.monotonic()
            try:
                report = probe.run()
            except probe.MemprobeError as exc:
                raise pytest.UsageError("memprobe cannot probe this host: %s" % exc) from None
            host = cls(report, "probed in %.2f s" % (time.monotonic() - started))
        if save_path:
            host.save(save_path)
        return host

    def save(self, path: str) -> None:
        from probe.report import build as _report

        text = _report.dumps(self.report, "json" if str(path).endswith(".json") else "yaml")
        try:
            _report.write_atomic(str(path), text)
        except probe.MemprobeError as exc:
            raise pytest.UsageError("--memprobe-save: %s" % exc) from None

    # ------------------------------------------------------------------ answers

    def entry(self, name: str) -> tuple[Any, Sequence[str], Any]:
        """(state, probe ids behind it, the report's sentence); a strategy before a
        capability of the same name (code_repatching: either way of patching)."""
        strategy = (self.report.get("strategies") or {}).get(name)
        if isinstance(strategy, dict):
            return strategy.get("verdict"), strategy_probes(name), strategy.get("detail")
        capability = (self.report.get("summary") or {}).get(name)
        if isinstance(capability, dict):
            return capability.get("state"), _render.capability_probes(name), capability.get("text")
        return None, strategy_probes(name) or _render.capability_probes(name), None

    def satisfied(self, name: str) -> bool:
        return self.entry(name)[0] in SATISFIED

    def why_not(self, name: str) -> str:
        """Why `name` does not work here, in one line."""
        state, probe_ids, sentence = self.entry(name)
        if state is None:
            return "%s unknown: the report does not say (%s)" % (name, self.probe_outcomes(probe_ids))
        detail = clean(sentence or "no detail", 120)
        if state == "blocked":
            return self.why_blocked(name, probe_ids, detail)
        if state == "not_enforced":
            return "%s not enforced: %s" % (name, detail)
        if state == "broken":
            return "%s broken here: %s" % (name, detail)
        return "%s unknown: memprobe could not decide on this host (%s)" % (
            name, self.probe_outcomes(probe_ids) or detail)

    def why_blocked(self, name: str, probe_ids: Sequence[str], detail: str) -> str:
        mechanisms = self.mechanisms(probe_ids)
        if mechanisms:
            return "%s blocked by %s" % (name, ", ".join(mechanisms))
        return "%s blocked by a mechanism memprobe could not identify (%s)" % (name, detail)

    def mechanisms(self, probe_ids: Sequence[str]) -> list[str]:
        """'mdwe (confirmed)' for each mechanism the report names for the refused probes."""
        probes = self.report.get("probes") or {}
        out, seen = [], set()
        for pid in probe_ids:
            result = probes.get(pid)
            if not isinstance(result, dict) or result.get("outcome") not in BLOCKING_OUTCOMES:
                continue
            for item in result.get("attribution") or ():
                mechanism, confidence = item.get("mechanism"), item.get("confidence")
                if mechanism == "unknown" or confidence not in ("confirmed", "likely"):
                    continue
                if mechanism not in seen:   # each list is most certain first
                    seen.add(mechanism)
                    out.append("%s (%s)" % (clean(mechanism, 60), confidence))
        return out

    def probe_outcomes(self, probe_ids: Sequence[str]) -> str:
        """'flip_rw_rx timeout: detail; not run: dual_map_shm' for the probes behind a name."""
        probes = self.report.get("probes") or {}
        parts, not_run = [], []
        for pid in probe_ids:
            result = probes.get(pid)
            if not isinstance(result, dict):
                not_run.append(pid)
                continue
            detail = result.get("detail")
            parts.append("%s %s%s" % (pid, clean(result.get("outcome"), 20),
                                      ": " + clean(detail, 100) if detail else ""))
        if not_run:
            parts.append("not run: %s" % ", ".join(not_run))
        return "; ".join(parts)

    def skip_reason(self, requirements: Requirements) -> str | None:
        """None when every requirement holds, else why the test cannot run here."""
        reasons: list[str] = []
        for kind, names in requirements:
            if kind == "all":
                reasons.extend(self.why_not(n) for n in names if not self.satisfied(n))
            elif not any(self.satisfied(n) for n in names):
                reasons.append("none of %s works: %s" % (", ".join(names),
                                                           "; ".join(self.why_not(n) for n in names)))
        return "; ".join(reasons) or None

    def header_line(self) -> str:
        """One line: the host label and which strategies work or are blocked (by what)."""
        groups: dict[str, list[str]] = {}
        for name, entry in (self.report.get("strategies") or {}).items():
            if isinstance(entry, dict):
                verdict, shown = _strategy_shown(name, entry)
                groups.setdefault(verdict, []).append(shown)
        parts = ["%s: %s" % (verdict, ", ".join(groups[verdict]))
                 for verdict in ("works", "blocked", "unknown") if groups.get(verdict)]
        return "memprobe: %s (%s): %s" % (_render.host_label(self.report), self.origin,
                                          "; ".join(parts) or "no strategies in the report")


def _strategy_shown(name: str, entry: dict[str, Any]) -> tuple[str, str]:
    """(works | blocked | unknown, the strategy's name with what blocks it)."""
    verdict = str(entry.get("verdict")) if entry.get("verdict") in ("works", "blocked") else "unknown"
    shown = clean(name, 40)
    blocked_by = [clean(m, 40) for m in entry.get("blocked_by") or () if m != "unknown"]
    if verdict == "blocked" and blocked_by:
        shown += " (%s)" % ", ".join(blocked_by)
    return verdict, shown

