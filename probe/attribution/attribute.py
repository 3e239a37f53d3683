"""Attribution: which mechanism refused each probe, and what a JIT should do here.

    attribute(report) -> None

Works from the report dict alone (host, process, policies, probes): adds `attribution`
to every probe whose outcome is not `allowed` (or `skipped`), and the top-level
`strategies` and `recommendation`. Pure functions; nothing here touches the host.

The rules are each mechanism module's (probe.mechanisms: what it refuses and how, as in
the README's mechanism table): a mechanism is a candidate when the refused operation and the errno or signal match
what it does; the policy detectors then make it `confirmed` (the detector says it is
active), drop it (the detector says it is off) or leave it `likely` (the detector
could not tell). Probes that separate mechanisms (map_rx, mprotect_rx_noop) refine it.
"""

from probe.mechanisms import (  # noqa: F401 - re-exported: the attribution API
    ACTIVE, FIX_HINTS, INACTIVE, MECH_OSES, MECHANISMS, UNSURE, Facts, Op, candidates, refine,
    scope_note, status_of)
from probe.attribution.strategies import STRATEGIES, strategies  # noqa: F401 - re-exported
from probe.attribution.recommendation import recommendation

_CONFIDENCE = {ACTIVE: "confirmed", UNSURE: "likely"}
_ORDER = {"confirmed": 0, "likely": 1, "unknown": 2}


def _not_a_refusal(result):
    """The attribution of a timeout, an error or a wrong result: none is a policy refusal."""
    outcome = result.get("outcome")
    if outcome == "timeout":
        return [_unknown(["no result within the timeout at step %s: a hang, not a refusal"
                          % (result.get("step") or "?")])]
    if outcome == "error":
        return [_unknown(["memprobe could not run the probe: %s" % (result.get("detail") or "no detail")])]
    return [_unknown(["the code ran but returned %r instead of %r: a stale instruction cache or "
                      "a broken mapping, not a policy refusal" % (result.get("value"),
                                                                   result.get("expected"))])]


def _weigh(mech, behaviour, result, op, f):
    """(attribution entry, None) for a kept candidate, (None, why not) for a dropped one."""
    state, det = status_of(mech, f, op)
    if state == INACTIVE:
        return None, "not %s: %s" % (mech, det)
    evidence = [behaviour] + ([det] if det else [])
    confidence = refine(mech, _CONFIDENCE.get(state), result, op, f, evidence)
    if confidence is None:
        return None, "not %s: %s" % (mech, evidence[-1])
    note = scope_note(mech, f)
    if note:
        evidence.append(note)
    return {"mechanism": mech, "confidence": confidence, "evidence": evidence}, None


def attribute_probe(probe_id: str, result: dict, f: Facts) -> "list | None":
    """The attribution list of one probe result (None for allowed/skipped)."""
    outcome = result.get("outcome")
    if outcome in ("allowed", "skipped", None):
        return None
    if outcome in ("timeout", "error", "wrong_result"):
        return _not_a_refusal(result)
    op = Op(probe_id, result)
    found, excluded = [], []
    for mech, behaviour in candidates(result, op, f):
        entry, why_not = _weigh(mech, behaviour, result, op, f)
        if entry is None:
            excluded.append(why_not)
        else:
            found.append(entry)
    if not found:
        return [_unknown([_observation(result, op)] + excluded)]
    found.sort(key=lambda a: _ORDER[a["confidence"]])
    return found


def _unknown(evidence):
    return {"mechanism": "unknown", "confidence": "unknown", "evidence": evidence}


def _observation(result, op):
    outcome = result.get("outcome")
    if result.get("exec_dropped"):
        return "%s succeeded but PROT_EXEC was silently dropped" % op.describe()
    if outcome == "denied":
        return "%s refused with %s, which no detected mechanism explains" % (
            op.describe(), result.get("errno_name"))
    if outcome in ("crashed", "killed"):
        return "%s at step %s, which no detected mechanism explains" % (result.get("signal"), op.describe())
    return "%s at %s" % (outcome, op.describe())


# --- entry point -----------------------------------------------------------------------


def settle_missing_calls(report: dict, f: Facts) -> None:
    """memfd_create failing with ENOSYS where the detector says no seccomp filter is
    attached: the kernel lacks the call (before Linux 3.17), so the probe does not apply
    here. It becomes `skipped`; with a filter attached (or unknown) it stays `denied`."""
    result = (report.get("probes") or {}).get("dual_map_memfd")
    if not isinstance(result, dict) or result.get("outcome") != "denied" or \
            result.get("errno_name") != "ENOSYS" or result.get("step") != "open":
        return
    state, evidence = status_of("seccomp", f, None)
    if state == INACTIVE:
        result.update(outcome="skipped", detail="memfd_create is not implemented by this kernel "
                      "(ENOSYS) and no seccomp filter could have refused it (%s)" % evidence)


def attribute(report: dict) -> None:
    """Add per-probe `attribution`, top-level `strategies` and `recommendation` in place
    (and refresh `summary`, where the report has one, for what settling changed)."""
    f = Facts(report)
    settle_missing_calls(report, f)
    for probe_id, result in (report.get("probes") or {}).items():
        if not isinstance(result, dict):
            continue
        found = attribute_probe(probe_id, result, f)
        if found is not None:
            result["attribution"] = found
        else:
            result.pop("attribution", None)
    strats = strategies(report)
    report["strategies"] = strats
    report["recommendation"] = recommendation(report, strats)
    if isinstance(report.get("summary"), dict) and isinstance(report.get("probes"), dict):
        from probe.attribution.summary import summarise
        report["summary"] = summarise(report["probes"], report.get("policies"))

