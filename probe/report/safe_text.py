"""Text taken from untrusted documents, made safe to show: one printable line, a type word."""

from __future__ import annotations

import os

# Names for the type checker only: importing typing would slow `memprobe run` down.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Union

MAX_LINE = 200          # longest shown line in an error message


def clean(text: Any, limit: int = MAX_LINE) -> str:
    """One printable line: control characters escaped, long text cut.

    Used for everything taken from a document or a file name before it reaches
    a terminal, so a hostile report cannot move the cursor or fake lines.
    """
    if not isinstance(text, str):
        text = str(text)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else _escape_char(c) for c in text)
    if limit and len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def _escape_char(c):
    code = ord(c)
    if code < 0x100:
        return "\\x%02x" % code
    if code < 0x10000:
        return "\\u%04x" % code
    return "\\U%08x" % code


def display_name(path: Union[str, bytes, "os.PathLike[str]"]) -> str:
    """A file name as one printable line, never cut."""
    return clean(os.fspath(path) if not isinstance(path, str) else path, limit=0)


_TYPE_WORDS = ((bool, "boolean"), ((int, float), "number"), (str, "string"), (list, "list"), (dict, "mapping"))


def type_word(value: Any) -> str:
    """The word a problem message uses for value's type: 'null', 'boolean', 'mapping'..."""
    if value is None:
        return "null"
    for types, word in _TYPE_WORDS:
        if isinstance(value, types):
            return word
    return type(value).__name__
