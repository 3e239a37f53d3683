"""A small JSON Schema validator for the subset the report schema uses.

Keywords: type, properties, required, additionalProperties, patternProperties,
items, enum, const, minimum, maximum, minLength, pattern, anyOf, $ref (local
"#/$defs/..."). Enough to check untrusted reports without a new dependency.
"""

from __future__ import annotations

import json
import os
import re

from probe.vocab import SUPPORTED_SCHEMA_VERSIONS

# Names for the type checker only: importing typing would slow `memprobe run` down.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schema")
SUPPORTED_VERSIONS = SUPPORTED_SCHEMA_VERSIONS

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}

_cache = {}


def load_schema(version: int = 1) -> Dict[str, Any]:
    """The report JSON Schema of that version, read once."""
    if version not in _cache:
        with open(os.path.join(SCHEMA_DIR, "report-v%d.json" % version), encoding="utf-8") as f:
            _cache[version] = json.load(f)
    return _cache[version]


def validate(doc: Any, schema: Optional[Dict[str, Any]] = None, limit: int = 50) -> List[str]:
    """Problems of `doc` against the schema, as 'path: message' strings (empty: valid)."""
    if schema is None:
        schema = load_schema(1)
    problems = []
    _Walk(schema, problems, limit).check(doc, schema, "$")
    return problems


def _resolve(root, ref):
    if not ref.startswith("#/"):
        raise ValueError("only local $ref is supported: %s" % ref)
    node = root
    for part in ref[2:].split("/"):
        node = node[part]
    return node


# The schema type names each Python type satisfies: one dict lookup per check, which
# matters when `matrix` validates thousands of reports.
_NAMES_OF = {dict: ("object",), list: ("array",), str: ("string",), bool: ("boolean",),
             int: ("integer", "number"), float: ("number",), type(None): ("null",)}


_COMPILED = {}


def _search(pattern, value):
    """JSON Schema's pattern test. In the ECMA-262 regexes a schema holds, a final '$'
    matches only at the very end; Python's '$' also matches before a final newline
    (so '^E[A-Z]+$' would take 'EACCES\\n'): it becomes '\\Z'."""
    compiled = _COMPILED.get(pattern)
    if compiled is None:
        python = pattern
        if python.endswith("$") and not python.endswith("\\$"):
            python = python[:-1] + "\\Z"
        compiled = _COMPILED[pattern] = re.compile(python)
    return compiled.search(value) is not None


def _type_ok(value, expected):
    names = _NAMES_OF.get(type(value))
    if names is None:
        names = tuple(n for n, test in _TYPES.items() if test(value))
    if isinstance(expected, list):
        return any(n in expected for n in names)
    return expected in names


def _short(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _Walk:
    """One validation: the schema root, the problems found and where to stop."""

    def __init__(self, root, problems, limit):
        self.root = root
        self.problems = problems
        self.limit = limit

    def check(self, value, schema, path):
        if len(self.problems) >= self.limit:
            return
        if "$ref" in schema:
            schema = _resolve(self.root, schema["$ref"])
        if not self.form_ok(value, schema, path):
            return
        _check_value(value, schema, path, self.problems)
        if isinstance(value, dict):
            self.mapping(value, schema, path)
        if isinstance(value, list) and "items" in schema:
            for i, item in enumerate(value):
                self.check(item, schema["items"], "%s[%d]" % (path, i))

    def form_ok(self, value, schema, path):
        """False (with the problem noted) when value has none of the allowed forms or the
        wrong type: nothing inside it is worth checking then."""
        if "anyOf" in schema and not self.any_of(value, schema["anyOf"], path):
            self.problems.append("%s: %s matches none of the allowed forms" % (path, _short(value)))
            return False
        if "type" in schema and not _type_ok(value, schema["type"]):
            expected = schema["type"]
            expected = " or ".join(expected) if isinstance(expected, list) else expected
            self.problems.append("%s: expected %s, got %s" % (path, expected, type(value).__name__))
            return False
        return True

    def any_of(self, value, options, path):
        """True when value passes one of the options (their problems are not kept)."""
        for option in options:
            trial = _Walk(self.root, [], self.limit)
            trial.check(value, option, path)
            if not trial.problems:
                return True
        return False

    def mapping(self, value, schema, path):
        for key in schema.get("required", ()):
            if key not in value:
                self.problems.append("%s: missing key %r" % (path, key))
        for key, item in value.items():
            if not isinstance(key, str):
                self.problems.append("%s: key %s is not a string" % (path, _short(key)))
                continue
            self.member(key, item, schema, path)

    def member(self, key, item, schema, path):
        sub = "%s.%s" % (path, key)
        props = schema.get("properties", {})
        if key in props:
            self.check(item, props[key], sub)
            return
        matched = [s for p, s in schema.get("patternProperties", {}).items() if _search(p, key)]
        for s in matched:
            self.check(item, s, sub)
        if matched:
            return
        extra = schema.get("additionalProperties", True)
        if extra is False:
            self.problems.append("%s: unexpected key %r" % (path, key))
        elif isinstance(extra, dict):
            self.check(item, extra, sub)


def _check_value(value, schema, path, problems):
    """The keywords about value itself: const, enum, number bounds, string length and pattern."""
    if "const" in schema and value != schema["const"]:
        problems.append("%s: must be %r, got %s" % (path, schema["const"], _short(value)))
    if "enum" in schema and value not in schema["enum"]:
        problems.append("%s: %s is not one of %s" % (path, _short(value), ", ".join(
            str(e) for e in schema["enum"])))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_number(value, schema, path, problems)
    if isinstance(value, str):
        _check_string(value, schema, path, problems)


def _check_number(value, schema, path, problems):
    if "minimum" in schema and value < schema["minimum"]:
        problems.append("%s: %r is below the minimum %r" % (path, value, schema["minimum"]))
    if "maximum" in schema and value > schema["maximum"]:
        problems.append("%s: %r is above the maximum %r" % (path, value, schema["maximum"]))


def _check_string(value, schema, path, problems):
    if "minLength" in schema and len(value) < schema["minLength"]:
        problems.append("%s: must not be empty" % path)
    if "pattern" in schema and not _search(schema["pattern"], value):
        problems.append("%s: %s does not match %s" % (path, _short(value), schema["pattern"]))
