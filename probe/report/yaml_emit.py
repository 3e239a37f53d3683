"""memprobe's own YAML writer for plain data trees (reports).

PyYAML costs a run more to import (it compiles large regular expressions) than this
module takes to write a whole report, so `memprobe run` writes its YAML here and only
the readers import PyYAML.

Contract: the input is a tree of dict (str keys, insertion order kept), list, str, int,
float, bool and None; anything else raises TypeError, since reports hold nothing else and
another type is a bug in the caller. The output is block style with a 2-space indent,
never folded, ends with a newline and reads back as the same tree under YAML 1.1
(PyYAML, libyaml) and YAML 1.2 parsers. The top level is normally a dict; a list or a
scalar is written too. Layout follows PyYAML's block style: sequences inside a mapping
are not indented (``key:`` then ``- item``), and a collection inside a sequence starts
on the dash's line (``- key: value``, ``- - item``).

A string is written plain only when no YAML 1.1 or 1.2 resolver can read it as anything
but that string (an ASCII letter, ``_`` or ``/`` first, then letters, digits, ``_ . / + -``
and single inner spaces, and no bool or null word); every other string is double-quoted
with escapes, so the output stays one line per scalar whatever the text holds. Lone
surrogates become ``\\udXXX`` escapes, which PyYAML's pure loader reads but libyaml refuses:
probe.report.build.dumps() turns them into text before they get here.
"""

from __future__ import annotations

# Names for the type checker only: importing typing would slow `memprobe run` down.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_PLAIN_FIRST = frozenset(_LETTERS + "_/")
_PLAIN_REST = frozenset(_LETTERS + "0123456789_./+- ")
# Words YAML 1.1 reads as bools or null (in some spelling), so never written plain.
_RESERVED_WORDS = frozenset(("y", "n", "yes", "no", "on", "off", "true", "false", "null"))

_SHORT_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}
# Characters YAML parsers refuse raw or read as line breaks or byte-order marks.
_UNICODE_ESCAPED = frozenset((0x2028, 0x2029, 0xFEFF, 0xFFFE, 0xFFFF))

# Parsers only take a key on its own `key: value` line up to 1024 characters; past
# PyYAML's own limit of 128 the key is written in the explicit `? key` form instead.
_LONGEST_IMPLICIT_KEY = 128

# Keys found plain so far: a report repeats the same few hundred keys (outcome, step, errno...)
# in every probe, and checking each again is most of the time spent on keys.
_PLAIN_KEYS = set()
_MOST_PLAIN_KEYS_KEPT = 4096


def emit(data: Any, ascii_only: bool = False) -> str:
    """`data` as block-style YAML text; `ascii_only` escapes every non-ASCII character."""
    lines = []  # type: List[str]
    if _is_block(data):
        _collection(data, 0, lines, ascii_only)
    else:
        lines.append(scalar(data, ascii_only))
    return "\n".join(lines) + "\n"


def _is_block(value):
    """True for a non-empty dict or list, written over lines of its own."""
    return isinstance(value, (dict, list)) and len(value) > 0


def _collection(value, indent, lines, ascii_only):
    if isinstance(value, dict):
        _mapping(value, indent, lines, ascii_only)
    else:
        _sequence(value, indent, lines, ascii_only)


def _mapping(mapping, indent, lines, ascii_only):
    pad = " " * indent
    for key, value in mapping.items():
        key_text = _key(key, ascii_only)
        if len(key_text) > _LONGEST_IMPLICIT_KEY:
            _explicit_entry(key_text, value, indent, lines, ascii_only)
        elif not _is_block(value):
            lines.append("%s%s: %s" % (pad, key_text, scalar(value, ascii_only)))
        else:
            lines.append("%s%s:" % (pad, key_text))
            # A sequence sits at its key's indent, as PyYAML writes it.
            _collection(value, indent + 2 if isinstance(value, dict) else indent, lines, ascii_only)


def _explicit_entry(key_text, value, indent, lines, ascii_only):
    pad = " " * indent
    # One chunk for both lines: a sequence item replaces only the first chunk's indent.
    if not _is_block(value):
        lines.append("%s? %s\n%s: %s" % (pad, key_text, pad, scalar(value, ascii_only)))
        return
    lines.append("%s? %s\n%s:" % (pad, key_text, pad))
    _collection(value, indent + 2, lines, ascii_only)


def _sequence(items, indent, lines, ascii_only):
    pad = " " * indent
    for item in items:
        if not _is_block(item):
            lines.append("%s- %s" % (pad, scalar(item, ascii_only)))
            continue
        # The item is written one level in; its first line then starts at the dash.
        first = len(lines)
        _collection(item, indent + 2, lines, ascii_only)
        lines[first] = pad + "- " + lines[first][indent + 2:]


def _key(key, ascii_only):
    if key in _PLAIN_KEYS:   # a str: a set holds no key that is not
        return key
    if not isinstance(key, str):
        raise TypeError("YAML report keys are strings, not %s: %r" % (type(key).__name__, key))
    if is_plain(key) and len(_PLAIN_KEYS) < _MOST_PLAIN_KEYS_KEPT:
        _PLAIN_KEYS.add(key)
    return string(key, ascii_only)


def scalar(value: Any, ascii_only: bool = False) -> str:
    """One scalar (or an empty dict or list) as YAML text on one line."""
    if isinstance(value, str):
        return string(value, ascii_only)
    if isinstance(value, bool):   # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)   # the number even for an int subclass with its own str
    if isinstance(value, float):
        return float_text(value)
    return _null_or_empty(value)


def _null_or_empty(value):
    if value is None:
        return "null"
    if isinstance(value, (dict, list)) and not value:
        return "{}" if isinstance(value, dict) else "[]"
    raise TypeError("no YAML form for %s in a report: %r" % (type(value).__name__, value))


def float_text(value: float) -> str:
    """A float as PyYAML's safe representer writes it (.nan, .inf, 1.0e-05)."""
    if value != value:
        return ".nan"
    if value in (float("inf"), float("-inf")):
        return ".inf" if value > 0 else "-.inf"
    text = float.__repr__(value)
    if "." not in text:
        # repr gives 1e-05; YAML 1.1 reads a float only with a dot in it.
        text = text.replace("e", ".0e", 1)
    return text


def string(text: str, ascii_only: bool = False) -> str:
    """`text` plain when that is certain to read back as the same string, else double-quoted."""
    if is_plain(text):
        return text
    if text.isascii() and text.isprintable():
        return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"')
    return '"%s"' % "".join(_escape(char, ascii_only) for char in text)


def is_plain(text: str) -> bool:
    """True when `text` may be written without quotes (see the module's docstring)."""
    return (text[:1] in _PLAIN_FIRST and _PLAIN_REST.issuperset(text) and not text.endswith(" ")
            and "  " not in text and text.lower() not in _RESERVED_WORDS)


def _escape(char, ascii_only):
    """One character of a double-quoted scalar."""
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return "\\x%02x" % code
    if _needs_unicode_escape(code, ascii_only):
        return "\\u%04x" % code if code <= 0xFFFF else "\\U%08x" % code
    return char


def _needs_unicode_escape(code, ascii_only):
    """True for a character beyond C1 that must not be written raw (surrogates included)."""
    return code in _UNICODE_ESCAPED or 0xD800 <= code <= 0xDFFF or (ascii_only and code > 0x7F)
