"""Every registered probe declares its memory kind, capability and strategy, in the words
of probe.vocab; attribution and the report summary read those declarations themselves
(the memory kind, the capabilities a probe feeds)."""

import json
import os

import pytest

from probe import vocab
from probe.mechanisms._base import Op
from probe.attribution.strategies import STRATEGIES
from probe.attribution.summary import NAMES, PROTECTIONS, capability_probes
from probe.engine.probes import REGISTRY, Probe

DECLARED = ("memory", "capability", "strategy")


def _declared_below_base(cls, name):
    """True when a class between the probe's own class and Probe sets the attribute."""
    return any(name in vars(klass) for klass in type(cls).__mro__ if klass is not Probe and klass is not object)


@pytest.mark.parametrize("probe", REGISTRY, ids=lambda p: p.id)
def test_probe_declares_memory_capability_strategy(probe):
    for name in DECLARED:
        assert _declared_below_base(probe, name), "%s does not declare %s" % (probe.id, name)
    assert probe.memory in vocab.MEMORY_KINDS
    assert probe.capability is None or probe.capability in vocab.CAPABILITIES
    assert probe.strategy is None or probe.strategy in vocab.STRATEGIES


@pytest.mark.parametrize("probe", REGISTRY, ids=lambda p: p.id)
def test_declarations_agree_with_the_tables(probe):
    assert Op(probe.id, {"step": "call"}).memory == probe.memory
    feeds = [cap for cap, ids in capability_probes().items() if probe.id in ids]
    assert feeds == ([probe.capability] if probe.capability else [])
    belongs = [entry[0] for entry in STRATEGIES if probe.id in entry[1]]
    assert belongs == ([probe.strategy] if probe.strategy else [])


def test_tables_name_only_registered_probes():
    ids = {p.id for p in REGISTRY}
    assert {pid for feeding in capability_probes().values() for pid in feeding} <= ids
    assert {pid for entry in STRATEGIES for pid in entry[1]} <= ids


def test_vocabulary_matches_the_tables():
    assert tuple(capability_probes()) == vocab.CAPABILITIES
    assert all(capability_probes().values()), "a capability no probe feeds"
    assert set(NAMES) == set(vocab.CAPABILITIES) and set(PROTECTIONS) <= set(NAMES)
    assert tuple(entry[0] for entry in STRATEGIES) == vocab.STRATEGIES
    assert {p.memory for p in REGISTRY} <= set(vocab.MEMORY_KINDS)


def test_schema_file_has_the_vocabulary_version():
    import probe
    from probe.report.validator import SCHEMA_DIR

    path = os.path.join(SCHEMA_DIR, "report-v%d.json" % vocab.SCHEMA_VERSION)
    with open(path, encoding="utf-8") as f:
        schema = json.load(f)
    assert probe.SCHEMA_VERSION == vocab.SCHEMA_VERSION
    assert vocab.SCHEMA_VERSION in vocab.SUPPORTED_SCHEMA_VERSIONS
    assert schema["properties"]["schema_version"]["const"] == vocab.SCHEMA_VERSION


def test_every_strategy_is_tested_by_a_declared_probe():
    declared = {p.strategy for p in REGISTRY if p.strategy}
    assert declared == set(vocab.STRATEGIES)
    assert all(entry[1] for entry in STRATEGIES)
