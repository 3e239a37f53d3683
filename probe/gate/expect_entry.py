"""One entry of an expectations file: a probe, a capability or a strategy.

    flip_rw_rx: allowed                      # probe outcome(s)
    patch_rwx: {outcome: denied, errno: EACCES, denied_by: pax-mprotect}
    nx: enforced                             # capability state(s)
    strategies: {wx_flip: works}             # strategy verdict(s), under `strategies:` only
    strategies: {rwx_mapping: {verdict: blocked, blocked_by: mdwe}}

Every problem is one line that starts with the entry's path in the file
('probes.map_rwx: ...'), which the loader turns into FILE:LINE:COL.
"""

import re

from probe.render.text import text
from probe.vocab import BLOCKING_OUTCOMES, CONFIDENCES, OUTCOMES, STATES, STRATEGIES, STRATEGY_VERDICTS
from probe.report.load import type_word as _type

PROBE_KEYS = ("outcome", "errno", "signal", "step", "denied_by", "confidence")
CAPABILITY_KEYS = ("state",)
STRATEGY_KEYS = ("verdict", "blocked_by")
BLOCKING = BLOCKING_OUTCOMES
# Whole strings only (fullmatch): '$' alone would also take "EACCES\n".
_ERRNO = re.compile(r"E[A-Z0-9]+")
_SIGNAL = re.compile(r"SIG[A-Z0-9]+")
_NAME = re.compile(r"[a-z][a-z0-9_]*")


def strategy_names() -> "tuple[str, ...]":
    """The strategies a report's `strategies` section may hold, in the engine's order."""
    return STRATEGIES


class Expectation:
    """One line of the expectations file."""

    def __init__(self, key: str, path: str, kind: "str | None" = None) -> None:
        self.key = key
        self.path = path          # where in the file: 'map_rwx' or 'probes.map_rwx'
        self.kind = kind          # 'probe', 'capability' or None (flat: decided by the value)
        self.values = None        # accepted outcomes / states
        self.errno = self.signal = self.step = self.denied_by = None
        self.confidence = ("confirmed", "likely")

    def describe(self) -> str:
        """'key: what must hold', escaped: every word here comes from the expectations file."""
        parts = []
        if self.values:
            parts.append("|".join(self.values))
        for label, values in (("errno", self.errno), ("signal", self.signal), ("step", self.step),
                              ("denied_by", self.denied_by)):
            if values:
                parts.append("%s %s" % (label, "|".join(text(v, 60) for v in values)))
        return "%s: %s" % (text(self.key, 60), text(", ".join(parts), 0))



def parse_entry(key: str, spec: object, path: str, kind: "str | None",
                problems: "list[str]") -> "Expectation | None":
    """An Expectation for a probe or capability, or None with a problem appended."""
    if not _NAME.fullmatch(key):
        problems.append("%s: %r is not a probe id or capability name" % (path, text(key, 60)))
        return None
    exp = Expectation(key, path, kind)
    if isinstance(spec, (str, list)):
        exp.values = _words(spec, path, problems)
        if exp.values is None:
            return None
    elif isinstance(spec, dict):
        if not _parse_fields(exp, spec, path, problems):
            return None
    else:
        problems.append("%s: expected an outcome, a state, a list of them or a mapping, got %s"
                        % (path, _type(spec)))
        return None
    if exp.values and not _check_values(exp, path, problems):
        return None
    return exp


def _parse_fields(exp, spec, path, problems):
    """The mapping form of an entry: a capability's state or a probe's fields. False: unusable."""
    if not _known_fields(spec, PROBE_KEYS + CAPABILITY_KEYS, path, problems):
        return False
    if "state" in spec and any(f in spec for f in PROBE_KEYS):
        problems.append("%s: 'state' is for capabilities, %s for probes; not both"
                        % (path, ", ".join(f for f in PROBE_KEYS if f in spec)))
        return False
    if "state" in spec:
        exp.kind = _settle(exp, "capability", path, problems)
        exp.values = _words(spec["state"], path + ".state", problems)
    else:
        exp.kind = _settle(exp, "probe", path, problems)
        if not _parse_probe_fields(exp, spec, path, problems):
            return False
    return exp.kind is not None


def _known_fields(spec, allowed, path, problems):
    for field in spec:
        if field not in allowed:
            problems.append("%s.%s: unknown field; use %s" % (path, text(field, 40), ", ".join(allowed)))
            return False
    return True


def _parse_probe_fields(exp, spec, path, problems):
    if "outcome" in spec:
        exp.values = _words(spec["outcome"], path + ".outcome", problems)
    exp.errno = _list_of(spec, "errno", path, problems, _ERRNO, "an errno name like EACCES")
    exp.signal = _list_of(spec, "signal", path, problems, _SIGNAL, "a signal name like SIGSEGV")
    exp.step = _list_of(spec, "step", path, problems, None, "a step name")
    exp.denied_by = _list_of(spec, "denied_by", path, problems, None, "a mechanism name")
    if exp.denied_by:
        exp.denied_by = tuple(mechanism(m) for m in exp.denied_by)
    if "confidence" in spec:
        _parse_confidence(exp, spec, path, problems)
    if not (exp.values or exp.errno or exp.signal or exp.step or exp.denied_by):
        problems.append("%s: says nothing; give an outcome, errno, signal, step or denied_by" % path)
        return False
    return True


def _parse_confidence(exp, spec, path, problems):
    conf = _list_of(spec, "confidence", path, problems, None, "a confidence")
    if conf:
        bad = [c for c in conf if c not in CONFIDENCES]
        if bad:
            problems.append("%s.confidence: %s is not one of %s"
                            % (path, text(bad[0], 40), ", ".join(CONFIDENCES)))
        exp.confidence = conf
    if not exp.denied_by:
        problems.append("%s.confidence: only meaningful with denied_by" % path)


# The words each kind of entry accepts, and what to call them in a problem.
_VOCABULARY = {"probe": (OUTCOMES, "a probe outcome"), "capability": (STATES, "a capability state")}


def _check_values(exp, path, problems):
    """The entry's words belong to its kind; a flat entry takes its kind from them."""
    if exp.kind is None:
        exp.kind = _kind_of_values(exp.values, path, problems)
        return exp.kind is not None
    if exp.kind not in _VOCABULARY:
        return True
    words, what = _VOCABULARY[exp.kind]
    bad = [v for v in exp.values if v not in words]
    if bad:
        problems.append("%s: %r is not %s (%s)" % (path, text(bad[0], 40), what, ", ".join(words)))
        return False
    return True


def _kind_of_values(values, path, problems):
    if all(v in OUTCOMES for v in values):
        return "probe"
    if all(v in STATES for v in values):
        return "capability"
    bad = [v for v in values if v not in OUTCOMES + STATES]
    if bad:
        problems.append("%s: %r is neither a probe outcome (%s) nor a capability state (%s)"
                        % (path, text(bad[0], 40), ", ".join(OUTCOMES), ", ".join(STATES)))
    else:
        problems.append("%s: mixes probe outcomes and capability states" % path)
    return None


def _settle(exp, kind, path, problems):
    if exp.kind is not None and exp.kind != kind:
        problems.append("%s: fields of a %s under %ss" % (path, kind, exp.kind))
        return None
    return kind


def _words(spec, path, problems):
    items = spec if isinstance(spec, list) else [spec]
    if not items:
        problems.append("%s: empty list" % path)
        return None
    for item in items:
        if not isinstance(item, str):
            problems.append("%s: expected a word such as allowed or works, got %s" % (path, _type(item)))
            return None
    return tuple(items)


def _list_of(spec, field, path, problems, pattern, what):
    if field not in spec:
        return None
    raw = spec[field]
    items = raw if isinstance(raw, list) else [raw]
    for item in items:
        problem = _item_problem(field, item, pattern, what)
        if problem:
            problems.append("%s.%s: %s" % (path, field, problem))
            return None
    if not items:
        problems.append("%s.%s: empty list" % (path, field))
        return None
    return tuple(items)


def _item_problem(field, item, pattern, what):
    """What is wrong with one item of a list field ('' when nothing); errno and signal take numbers too."""
    if field in ("errno", "signal") and isinstance(item, int) and not isinstance(item, bool) and item >= 0:
        return ""
    if not isinstance(item, str) or not item.strip():
        return "expected %s, got %s" % (what, _type(item))
    if pattern is not None and not pattern.fullmatch(item):
        return "%r is not %s" % (text(item, 40), what)
    return ""


def mechanism(name: object) -> str:
    """pax_mprotect, 'PaX MPROTECT' and pax-mprotect are one name."""
    return re.sub(r"[\s_]+", "-", str(name).strip().lower())


class StrategyExpectation:
    """`strategies: {name: verdict}`: what the report's strategy section must say."""

    kind = "strategy"

    def __init__(self, key: str, path: str) -> None:
        self.key = key
        self.path = path
        self.values = None        # accepted verdicts
        self.blocked_by = None    # mechanisms, one of which must be among the entry's blocked_by

    def describe(self) -> str:
        parts = ["|".join(self.values)] if self.values else []
        if self.blocked_by:
            parts.append("blocked_by %s" % "|".join(text(m, 60) for m in self.blocked_by))
        return "strategies.%s: %s" % (text(self.key, 60), text(", ".join(parts), 0))


def parse_strategy(key: str, spec: object, path: str,
                   problems: "list[str]") -> "StrategyExpectation | None":
    """A StrategyExpectation, or None with a problem appended."""
    names = strategy_names()
    if key not in names:
        problems.append("%s: unknown strategy %r (known: %s)" % (path, text(key, 60), ", ".join(names)))
        return None
    exp = StrategyExpectation(key, path)
    if isinstance(spec, dict):
        if not _parse_strategy_fields(exp, spec, path, problems):
            return None
    elif isinstance(spec, (str, list)):
        exp.values = _words(spec, path, problems)
        if exp.values is None:
            return None
    else:
        problems.append("%s: expected a verdict, a list of them or a mapping, got %s" % (path, _type(spec)))
        return None
    bad = [v for v in exp.values or () if v not in STRATEGY_VERDICTS]
    if bad:
        problems.append("%s: %r is not a strategy verdict (%s)"
                        % (path, text(bad[0], 40), ", ".join(STRATEGY_VERDICTS)))
        return None
    return exp


def _parse_strategy_fields(exp, spec, path, problems):
    """The mapping form {verdict, blocked_by}. False: unusable."""
    if not _known_fields(spec, STRATEGY_KEYS, path, problems):
        return False
    if "verdict" in spec:
        exp.values = _words(spec["verdict"], path + ".verdict", problems)
        if exp.values is None:
            return False
    exp.blocked_by = _list_of(spec, "blocked_by", path, problems, None, "a mechanism name")
    if "blocked_by" in spec and exp.blocked_by is None:
        return False
    if exp.blocked_by:
        exp.blocked_by = tuple(mechanism(m) for m in exp.blocked_by)
    if not (exp.values or exp.blocked_by):
        problems.append("%s: says nothing; give a verdict or blocked_by" % path)
        return False
    return True
