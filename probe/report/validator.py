"""A small JSON Schema validator for the subset the report schema uses.

Keywords: type, properties, required, additionalProperties, patternProperties,
items, enum, const, minimum, maximum, minLength, pattern, anyOf, $ref (local
"#/$defs/..."). Enough to check untrusted reports without a new dependency.
"""

import json
import os
import re

from probe.vocab import SUPPORTED_SCHEMA_VERSIONS

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


def load_schema(version=1):
    if version not in _cache:
        with open(os.path.join(SCHEMA_DIR, "report-v%d.json" % version), encoding="utf-8") as f:
            _cache[version] = json.load(f)
    return _cache[version]


def validate(doc, schema=None, limit=50):
    """Problems of `doc` against the schema, as 'path: message' strings (empty: valid)."""
    if schema is None:
        schema = load_schema(1)
    problems = []
    _check(doc, schema, schema, "$", problems, limit)
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


def _check(value, schema, root, path, problems, limit):
    if len(problems) >= limit:
        return
    if "$ref" in schema:
        schema = _resolve(root, schema["$ref"])
    if "anyOf" in schema:
        for option in schema["anyOf"]:
            trial = []
            _check(value, option, root, path, trial, limit)
            if not trial:
                break
        else:
            problems.append("%s: %s matches none of the allowed forms" % (path, _short(value)))
            return
    if "type" in schema and not _type_ok(value, schema["type"]):
        expected = schema["type"]
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        problems.append("%s: expected %s, got %s" % (path, expected, type(value).__name__))
        return
    if "const" in schema and value != schema["const"]:
        problems.append("%s: must be %r, got %s" % (path, schema["const"], _short(value)))
    if "enum" in schema and value not in schema["enum"]:
        problems.append("%s: %s is not one of %s" % (path, _short(value), ", ".join(
            str(e) for e in schema["enum"])))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append("%s: %r is below the minimum %r" % (path, value, schema["minimum"]))
        if "maximum" in schema and value > schema["maximum"]:
            problems.append("%s: %r is above the maximum %r" % (path, value, schema["maximum"]))
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            problems.append("%s: must not be empty" % path)
        if "pattern" in schema and not _search(schema["pattern"], value):
            problems.append("%s: %s does not match %s" % (path, _short(value), schema["pattern"]))
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", ()):
            if key not in value:
                problems.append("%s: missing key %r" % (path, key))
        patterns = schema.get("patternProperties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            sub = "%s.%s" % (path, key)
            if not isinstance(key, str):
                problems.append("%s: key %s is not a string" % (path, _short(key)))
                continue
            if key in props:
                _check(item, props[key], root, sub, problems, limit)
                continue
            matched = [s for p, s in patterns.items() if _search(p, key)]
            for s in matched:
                _check(item, s, root, sub, problems, limit)
            if matched:
                continue
            if extra is False:
                problems.append("%s: unexpected key %r" % (path, key))
            elif isinstance(extra, dict):
                _check(item, extra, root, sub, problems, limit)
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _check(item, schema["items"], root, "%s[%d]" % (path, i), problems, limit)
