"""Untrusted JSON to plain data, under the same rules as YAML (see probe.report.load)."""

from __future__ import annotations

import json
import math
import re

from probe.errors import ReportError
from probe.report.limits import MAX_DEPTH, MAX_DIGITS, MAX_NODES
from probe.report.safe_text import clean

# Names for the type checker only: importing typing would slow `memprobe run` down.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _bad_constant(token):
    raise ValueError("%s is not a number a report may hold" % token)


def parse_json(data: bytes, name: str) -> Any:
    """Parse untrusted JSON bytes into plain data, or raise ReportError."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReportError("%s: not UTF-8 text (byte %d)" % (name, exc.start)) from None
    try:
        doc = json.loads(text, parse_constant=_bad_constant, object_pairs_hook=_json_object,
                         parse_int=_json_int, parse_float=_json_float)
    except json.JSONDecodeError as exc:
        raise ReportError("%s:%d:%d: invalid JSON: %s" % (name, exc.lineno, exc.colno, clean(exc.msg))) from None
    except RecursionError:
        raise ReportError("%s: nesting too deep" % name) from None
    except ValueError as exc:
        raise ReportError("%s: invalid JSON: %s" % (name, clean(exc))) from None
    _check_depth(doc, name)
    if _SURROGATE_ESCAPE.search(data):
        _refuse_lone_surrogates(doc, name)
    return doc


# A JSON \\uXXXX escape of a UTF-16 surrogate: the only way a lone surrogate, which no
# UTF-8 output can carry, gets into a parsed document (YAML's parser refuses them).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _refuse_lone_surrogates(doc, name):
    stack = [doc]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ReportError("%s: a string holds a lone UTF-16 surrogate (%s), which is not text"
                                  % (name, clean(value, 60))) from None


def _json_int(digits):
    if len(digits) > MAX_DIGITS:
        raise ValueError("number with %d digits is too long for a report" % len(digits))
    return int(digits)


def _json_float(digits):
    value = float(digits) if len(digits) <= MAX_DIGITS else math.inf
    if not math.isfinite(value):
        raise ValueError("number %s is not finite or too long for a report" % clean(digits, 40))
    return value


def _json_object(pairs):
    result = dict(pairs)
    if len(result) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError("duplicate key %r" % key)
            seen.add(key)
    return result


def _check_depth(doc, name):
    """JSON nesting check (iterative) so a deep document fails like its YAML twin."""
    stack = [(doc, 0)]
    count = 0
    while stack:
        value, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH:
            raise ReportError("%s: nested deeper than %d levels" % (name, MAX_DEPTH))
        if count > MAX_NODES:
            raise ReportError("%s: more than %d values" % (name, MAX_NODES))
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
