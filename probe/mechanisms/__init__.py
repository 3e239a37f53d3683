"""The mechanisms memprobe knows: one module each in this package, found by itself.

A mechanism module (any module here whose name does not start with "_") declares:

    MECHANISMS   {name: description} of the mechanisms it attributes refusals to
    OSES         the OSes they act on (ANY_OS: every OS)
    FIX_HINTS    {name: how to lift it}, where there is a way
    DETECTOR     the policy detector class that reads its state from the host
    status(mech, facts, op) -> (ACTIVE | INACTIVE | UNSURE, evidence)
    rules(observation, op, facts) -> [(rank, mech, behaviour sentence)]
    refine(mech, confidence, result, op, facts, evidence)   optional: cross-probe evidence
    scope(mech, facts)                                      optional: a note on scope

Adding a mechanism is adding a module: nothing else names them. Rules and status work
from the report dict alone (Facts); only the detectors touch the host, through a
probe.policy.Source.
"""

import importlib
import os
import types

from probe.mechanisms._base import (  # noqa: F401 - re-exported: the mechanisms API
    ACTIVE, ANY_OS, INACTIVE, UNSURE, Facts, Observation, Op, applies_on)
from probe.mechanisms._detect import detector_registry

# Every module of this folder is a mechanism but the helpers, whose names start with "_".
# (A directory listing: pkgutil would cost a run several milliseconds of imports.)
MODULE_NAMES = tuple(sorted(name[:-3] for name in os.listdir(os.path.dirname(__file__))
                            if name.endswith(".py") and not name.startswith("_")))
MODULES = tuple(importlib.import_module("%s.%s" % (__name__, name)) for name in MODULE_NAMES)

UNKNOWN = "unknown"
MECHANISMS = {mech: text for module in MODULES for mech, text in module.MECHANISMS.items()}
MECHANISMS[UNKNOWN] = "no known mechanism matches"
FIX_HINTS = {mech: hint for module in MODULES for mech, hint in module.FIX_HINTS.items()}
MECH_OSES = {mech: module.OSES for module in MODULES for mech in module.MECHANISMS}
_MODULE_OF = {mech: module for module in MODULES for mech in module.MECHANISMS}

DETECTORS = detector_registry(MODULES)


def module_of(mech: str) -> "types.ModuleType":
    """The module that holds a mechanism's detector and rules."""
    return _MODULE_OF[mech]


def status_of(mech: str, f: Facts, op: "Op | None") -> tuple:
    """(ACTIVE/INACTIVE/UNSURE, evidence string) of what the detectors say."""
    module = _MODULE_OF.get(mech)
    if module is None:
        return UNSURE, ""
    return module.status(mech, f, op)


def candidates(result: dict, op: Op, f: Facts) -> list:
    """[(mechanism, behaviour sentence)] whose refusal rules match, in rank order, for
    the mechanisms that act on the report's OS."""
    obs = Observation(result, op)
    found = [rule for module in MODULES if applies_on(module.OSES, f.os)
             for rule in module.rules(obs, op, f)]
    found.sort(key=lambda rule: rule[0])
    return [(mech, text) for _, mech, text in found]


def refine(mech: str, confidence: "str | None", result: dict, op: Op, f: Facts,
           evidence: list) -> "str | None":
    """The module's cross-probe refinement of a candidate: confidence, or None to drop it."""
    fn = getattr(_MODULE_OF[mech], "refine", None)
    return confidence if fn is None else fn(mech, confidence, result, op, f, evidence)


def scope_note(mech: str, f: Facts) -> "str | None":
    """A note on whom the verdict holds for, where the module has one."""
    fn = getattr(_MODULE_OF[mech], "scope", None)
    return None if fn is None else fn(mech, f)


def sigkill_is_pax(report: dict) -> bool:
    """Whether a SIGKILL can be read as a refusal: only where a detector says PaX PAGEEXEC
    is on for this process. Anywhere else an outside SIGKILL (the OOM killer, an operator)
    says nothing about the strategy."""
    return status_of("pax-pageexec", Facts(report), None)[0] == ACTIVE


def detect(root: "str | None" = None, os_name: "str | None" = None, env: "dict | None" = None,
           executable: "str | None" = None, include_inapplicable: bool = False) -> dict:
    """Run every detector that applies; {name: result} in registry order. Never raises.
    See probe.mechanisms._detect.run for the arguments."""
    from probe.mechanisms._detect import run
    return run(DETECTORS, root, os_name, env, executable, include_inapplicable)


def registry() -> list:
    """[(name, title, oses)] of every detector, in order (for docs and `list`)."""
    return [(d.name, d.title, d.oses) for d in DETECTORS]
