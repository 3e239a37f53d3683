"""One meaning per word: an outcome says the same of a capability (the summary) and of a
strategy (the strategies section); the report schema accepts every word the code writes."""

import pytest

from probe import vocab
from probe.attribution.strategies import strategies
from probe.attribution.summary import summarise
from probe.report import validator as _schema


def verdict(outcome, **kw):
    v = {"outcome": outcome, "step": "call", "errno": None, "errno_name": None, "signal": None,
         "signal_number": None, "value": None, "expected": 23, "exec_dropped": False,
         "duration_ms": 1.0, "detail": "x", "steps": [], "attribution": None}
    v.update(kw)
    return v


@pytest.mark.parametrize("outcome, state", [
    ("allowed", "works"), ("denied", "blocked"), ("crashed", "blocked"),
    ("wrong_result", "broken"), ("timeout", "unknown"), ("skipped", "unknown"), ("error", "unknown")])
def test_an_outcome_means_the_same_to_the_summary_and_the_strategies(outcome, state):
    assert vocab.outcome_state(outcome) == state
    extra = {"signal": "SIGSEGV"} if outcome == "crashed" else {}
    probes = {"dual_map_memfd": verdict(outcome, value=7 if outcome == "wrong_result" else None, **extra)}
    assert summarise(probes, {})["dual_mapping"]["state"] == state
    report = {"probes": probes, "policies": {}}
    assert strategies(report)["dual_mapping"]["variants"] == {"memfd": state}


def test_an_outside_sigkill_says_nothing_to_either():
    assert vocab.outcome_state("killed") == "blocked"     # where a policy is known to kill
    probes = {"flip_rw_rx": verdict("killed", signal="SIGKILL")}
    assert vocab.outcome_state("killed", sigkill_blocks=False) == "unknown"
    assert summarise(probes, {})["wx_flip"]["state"] == "unknown"
    assert strategies({"probes": probes, "policies": {}})["wx_flip"]["verdict"] == "unknown"


def test_the_schema_takes_every_state_a_variant_can_have():
    schema = _schema.load_schema()
    variants = schema["$defs"]["strategy"]["properties"]["variants"]["additionalProperties"]["enum"]
    assert set(vocab.OUTCOME_STATES.values()) | {"unknown"} <= set(variants)
    summary_states = set(vocab.STATES)
    assert set(vocab.OUTCOME_STATES.values()) <= summary_states
