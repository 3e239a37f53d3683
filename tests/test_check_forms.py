"""memprobe check: strategies, any/all groups and `when` sections, on real reports of this
machine (plain, under PR_SET_MDWE, under the seccomp filter returning EPERM and killing)."""

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probe.commands import check
from probe.errors import InputError

from helpers.collect_fixtures import cli, real, variant, write, write_bytes  # noqa: F401

CONFINED = ("mdwe", "seccomp", "seccomp-kill")
MECHANISM = {"mdwe": "mdwe", "seccomp": "seccomp", "seccomp-kill": "seccomp"}


def gate(tmp_path, text, report, *extra):
    path = write_bytes(tmp_path, "expect.yaml", text.encode("utf-8"))
    return cli("check", "-e", path, report, *extra)


def verdicts(out):
    return [line.split()[0] for line in out.splitlines() if line.split() and line.split()[0] in
            ("ok", "FAIL", "UNDECIDED")]


# --------------------------------------------------------------------------- strategies

def test_strategy_works_plain_blocked_confined(real, tmp_path):
    text = "strategies:\n  wx_flip: works\n  dual_mapping: works\n"
    status, out, err = gate(tmp_path, text, real.json("plain"))
    assert status == 0, out + err
    assert "ok        strategies.wx_flip: works  (found works)" in out
    for name in CONFINED:
        status, out, _ = gate(tmp_path, text, real.json(name))
        assert status == 2, (name, out)
        assert verdicts(out) == ["FAIL", "ok"]
        assert "(found blocked by %s)" % MECHANISM[name] in out


def test_strategy_blocked_by_names_the_mechanism(real, tmp_path):
    text = "strategies:\n  rwx_mapping: {verdict: blocked, blocked_by: mdwe}\n"
    assert gate(tmp_path, text, real.json("mdwe"))[0] == 0
    for name, status in (("seccomp", 2), ("seccomp-kill", 2), ("plain", 2)):
        assert gate(tmp_path, text, real.json(name))[0] == status, name
    # blocked_by alone implies blocked; a family prefix matches
    text = "strategies:\n  wx_flip: {blocked_by: SECCOMP}\n"
    assert [gate(tmp_path, text, real.json(n))[0] for n in ("seccomp", "seccomp-kill", "mdwe")] == [0, 0, 2]


def test_strategy_unknown_verdict_is_undecided(real, tmp_path):
    doc = real.doc("plain")
    doc["strategies"]["wx_flip"]["verdict"] = "unknown"
    report = write(tmp_path, "r.json", doc)
    status, out, _ = gate(tmp_path, "strategies: {wx_flip: works}\n", report)
    assert status == 3 and verdicts(out) == ["UNDECIDED"]
    assert gate(tmp_path, "strategies: {wx_flip: [works, unknown]}\n", report)[0] == 0
    del doc["strategies"]
    report = write(tmp_path, "r.json", doc)
    status, out, _ = gate(tmp_path, "strategies: {wx_flip: works}\n", report)
    assert status == 3 and "strategy not in the report" in out


# --------------------------------------------------------------------------- any / all

JIT = """\
any:
  - strategies: {wx_flip: works}
  - strategies: {dual_mapping: works}
"""


@pytest.mark.parametrize("name", ("plain",) + CONFINED)
def test_any_flip_or_double_mapping_holds_everywhere_here(real, tmp_path, name):
    status, out, err = gate(tmp_path, JIT, real.json(name))
    assert status == 0, out + err
    if name != "plain":
        assert "strategies.wx_flip blocked by %s; strategies.dual_mapping works" % MECHANISM[name] in out


@pytest.mark.parametrize("name", CONFINED)
def test_any_fails_when_every_member_fails(real, tmp_path, name):
    text = "any:\n  - strategies: {wx_flip: works}\n  - rwx_mapping: works\n  - map_rwx: allowed\n"
    assert gate(tmp_path, text, real.json("plain"))[0] == 0
    status, out, _ = gate(tmp_path, text, real.json(name))
    assert status == 2 and verdicts(out) == ["FAIL"]
    assert out.count("\n") == 3   # host, one line for the group, the counts


def test_all_and_nesting(real, tmp_path):
    text = """\
all:
  - nx: enforced
  - any:
      - {strategies: {wx_flip: works}, code_repatching: works}   # both, or ...
      - all: [{dual_mapping: works}, {map_rwx: denied}]         # ... this pair
"""
    assert [gate(tmp_path, text, real.json(n))[0] for n in ("plain", "mdwe")] == [0, 0]
    # under the killing filter map_rwx crashes with SIGSYS, not denied: the second pair fails too
    status, out, _ = gate(tmp_path, text, real.json("seccomp-kill"))
    assert status == 2, out
    assert "any [" in out and "map_rwx crashed SIGSYS" in out


def test_group_undecided(real, tmp_path):
    doc = real.doc("mdwe")
    doc["strategies"]["dual_mapping"]["verdict"] = "unknown"
    report = write(tmp_path, "r.json", doc)
    status, out, _ = gate(tmp_path, JIT, report)   # wx_flip fails, dual_mapping undecided
    assert status == 3 and verdicts(out) == ["UNDECIDED"]
    status, _, _ = gate(tmp_path, "all: [{nx: enforced}, {strategies: {dual_mapping: works}}]\n", report)
    assert status == 3
    status, _, _ = gate(tmp_path, "all: [{wx_flip: works}, {strategies: {dual_mapping: works}}]\n", report)
    assert status == 2   # a failure outranks undecided


# --------------------------------------------------------------------------- when sections

MATRIX = """\
nx: enforced
sections:
  - when: {os: linux}
    strategies: {dual_mapping: works}
  - when: {os: freebsd, arch: aarch64}
    wx_flip: blocked
  - when: {os: [linux, freebsd], pointer_bits: [32, 64]}
    strategies: {wx_flip: works}
"""


def test_sections_apply_by_host(real, tmp_path):
    status, out, err = gate(tmp_path, MATRIX, real.json("plain"))
    assert status == 0, out + err
    assert "not applied: sections[1] (when os freebsd, arch aarch64)" in out
    assert verdicts(out) == ["ok"] * 3      # nx, and both linux sections: several apply
    status, out, _ = gate(tmp_path, MATRIX, real.json("mdwe"))
    assert status == 2 and verdicts(out) == ["ok", "ok", "FAIL"]


def test_section_for_another_host(real, tmp_path):
    freebsd = variant(real.doc("mdwe"), os_name="freebsd", arch="aarch64")
    report = write(tmp_path, "freebsd.json", freebsd)
    status, out, err = gate(tmp_path, MATRIX, report, "--format", "json")
    assert status == 2, out + err
    result = json.loads(out)
    assert [s["applied"] for s in result["sections"]] == [False, True, True]
    assert [(e["path"], e["verdict"]) for e in result["expectations"]] == [
        ("nx", "holds"), ("sections[1].wx_flip", "holds"), ("sections[2].strategies.wx_flip", "fails")]
    assert [e["line"] for e in result["expectations"]] == [1, 6, 8]


def test_when_matches_only_when_every_key_does(real):
    doc = real.doc("plain")
    items = check.parse_expectations({"sections": [
        {"when": {"os": "linux", "arch": doc["host"]["arch"]}, "nx": "enforced"},
        {"when": {"os": "linux", "arch": "s390x"}, "nx": "enforced"},
        {"when": {"distribution": doc["host"]["distribution"]["id"], "byte_order": "little"}, "nx": "enforced"},
        {"when": {"kernel_release": doc["host"]["kernel_release"] + "x"}, "nx": "enforced"},
    ]})[0]
    assert [s.applies(doc) for s in items] == [True, False, True, False]


def test_no_expectation_applies_is_undecided(real, tmp_path):
    text = "sections:\n  - when: {os: freebsd}\n    wx_flip: works\n"
    status, out, _ = gate(tmp_path, text, real.json("plain"))
    assert status == 3
    assert "no expectation applies to this host" in out
    assert out.splitlines()[-1] == "0 expectations: 0 hold, 0 fail, 0 undecided"


# --------------------------------------------------------------------------- random nesting

_KEYS = st.sampled_from(["any", "all", "sections", "when", "strategies", "probes", "wx_flip", "dual_mapping",
                         "map_rwx", "nx", "os", "arch", "verdict", "blocked_by", "Bad", ""])
_LEAVES = st.one_of(st.sampled_from(["works", "blocked", "unknown", "allowed", "denied", "linux", "x86_64",
                                     "mdwe", "enforced", "bad\x1b[0m"]), st.integers(-1, 70), st.none(),
                    st.booleans())
_DOCS = st.recursive(_LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(_KEYS, inner, max_size=3)),
                     max_leaves=12)


@pytest.mark.slow
@settings(max_examples=int(os.environ.get("MEMPROBE_FUZZ_EXAMPLES", "80")), deadline=None,
          derandomize=bool(os.environ.get("CI")), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=st.dictionaries(_KEYS, _DOCS, min_size=1, max_size=4))
def test_random_nesting_ends_in_one_line_problems_or_verdicts(real, doc):
    report = real.doc("mdwe")
    items, problems = check.parse_expectations(doc)
    for problem in problems:
        assert "\n" not in problem and "\x1b" not in problem
    if problems or not items:
        return
    try:
        check.resolve(items, report)
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    for exp, verdict, found in check.check(items, report):
        assert verdict in ("holds", "fails", "undecided") and "\x1b" not in found + exp.describe()


_ENTRIES = st.one_of(
    st.fixed_dictionaries({"strategies": st.dictionaries(
        st.sampled_from(["wx_flip", "dual_mapping", "rwx_mapping", "code_repatching"]),
        st.sampled_from(["works", "blocked", "unknown", ["works", "unknown"], {"blocked_by": "mdwe"}]),
        min_size=1)}),
    st.dictionaries(st.sampled_from(["nx", "wx_flip", "map_rwx", "flip_rw_rx"]),
                    st.sampled_from(["enforced", "works", "blocked", "allowed", "denied"]), min_size=1)
    .filter(lambda d: all((k in ("nx", "wx_flip")) == (v in ("enforced", "works", "blocked")) for k, v in d.items())))
_GROUPS = st.recursive(_ENTRIES, lambda inner: st.builds(lambda mode, members: {mode: members},
                                                          st.sampled_from(["any", "all"]),
                                                          st.lists(inner, min_size=1, max_size=3)),
                       max_leaves=8)
_SECTIONS = st.lists(st.builds(lambda when, body: dict(body, when=when),
                               st.sampled_from([{"os": "linux"}, {"os": "freebsd"}, {"arch": ["x86_64", "aarch64"]},
                                                {"os": "linux", "pointer_bits": 32}]), _GROUPS),
                     min_size=1, max_size=3)


@pytest.mark.slow
@settings(max_examples=int(os.environ.get("MEMPROBE_FUZZ_EXAMPLES", "80")), deadline=None,
          derandomize=bool(os.environ.get("CI")), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_GROUPS, sections=st.one_of(st.none(), _SECTIONS))
def test_well_formed_nesting_is_decided_like_its_members(real, body, sections):
    report = real.doc("seccomp")
    doc = dict(body, sections=sections) if sections else body
    items, problems = check.parse_expectations(doc)
    assert problems == [] and items
    check.resolve(items, report)
    for exp, verdict, _ in check.check(items, report):
        if exp.kind == "group":
            members = [[check.evaluate(item, report)[0] for item in member] for member in exp.members]
            per_member = ["fails" if "fails" in m else "undecided" if "undecided" in m else "holds"
                          for m in members]
            if exp.mode == "any":
                assert (verdict == "holds") == ("holds" in per_member)
                assert (verdict == "fails") == all(m == "fails" for m in per_member)
            else:
                assert (verdict == "fails") == ("fails" in per_member)
                assert (verdict == "holds") == all(m == "holds" for m in per_member)
