"""Type checks of the fields the collector commands read: fast enough for matrix over
thousands of reports, and what the collector code relies on after a report loads."""

from __future__ import annotations


from probe.report.safe_text import clean, type_word

# Names for the type checker only: importing typing would slow `memprobe run` down.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List


def light_problems(doc: Dict[str, Any]) -> List[str]:
    """Problem strings ("path: what"). Assumes version_problem() found none."""
    problems = []
    _host_problems(doc.get("host"), problems)
    process = doc.get("process")
    if process is not None and not isinstance(process, dict):
        problems.append("process: expected a mapping, got %s" % type_word(process))
    if not isinstance(doc.get("generated_at", ""), str):
        problems.append("generated_at: expected a string, got %s" % type_word(doc.get("generated_at")))
    _summary_problems(doc.get("summary"), problems)
    _probes_problems(doc.get("probes"), problems)
    return problems


def _host_problems(host, problems):
    if not isinstance(host, dict):
        problems.append("host: expected a mapping, got %s" % type_word(host))
        return
    for key in ("os", "hostname"):
        if not isinstance(host.get(key), str):
            problems.append("host.%s: expected a string, got %s" % (key, type_word(host.get(key))))
    for key in ("kernel_release", "machine", "arch"):
        if host.get(key) is not None and not isinstance(host.get(key), str):
            problems.append("host.%s: expected a string or null, got %s" % (key, type_word(host.get(key))))


def _summary_problems(summary, problems):
    if not isinstance(summary, dict):
        problems.append("summary: expected a mapping, got %s" % type_word(summary))
        return
    for cap, entry in summary.items():
        where = "summary.%s" % clean(cap, 60)
        if not isinstance(entry, dict):
            problems.append("%s: expected a mapping, got %s" % (where, type_word(entry)))
        elif not isinstance(entry.get("state"), str):
            problems.append("%s.state: expected a string, got %s" % (where, type_word(entry.get("state"))))
        elif "text" in entry and not isinstance(entry["text"], str):
            problems.append("%s.text: expected a string, got %s" % (where, type_word(entry["text"])))


def _probes_problems(probes, problems):
    if not isinstance(probes, dict):
        problems.append("probes: expected a mapping, got %s" % type_word(probes))
        return
    for pid, result in probes.items():
        where = "probes.%s" % clean(pid, 60)
        if not isinstance(result, dict):
            problems.append("%s: expected a mapping, got %s" % (where, type_word(result)))
            continue
        _result_problems(where, result, problems)


def _result_problems(where, result, problems):
    if not isinstance(result.get("outcome"), str):
        problems.append("%s.outcome: expected a string, got %s" % (where, type_word(result.get("outcome"))))
    for key in ("step", "errno_name", "signal", "detail"):
        if result.get(key) is not None and not isinstance(result[key], str):
            problems.append("%s.%s: expected a string or null, got %s" % (where, key, type_word(result[key])))
    attribution = result.get("attribution")
    if attribution is None:
        return
    if not isinstance(attribution, list):
        problems.append("%s.attribution: expected a list, got %s" % (where, type_word(attribution)))
        return
    for i, item in enumerate(attribution):
        if not isinstance(item, dict) or not isinstance(item.get("mechanism"), str):
            problems.append("%s.attribution[%d]: expected a mapping with a mechanism string" % (where, i))
