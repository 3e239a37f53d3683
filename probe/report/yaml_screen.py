"""Bounding a YAML document's depth and size before libyaml composes it.

libyaml's composer recurses in C and crashes the interpreter on a 100,000-deep
``[[[[...``, so depth and node count are checked first: from byte counts when
they prove the document small, else by walking the event stream.
"""

from __future__ import annotations

import re

from probe.errors import ReportError
from probe.report.limits import MAX_DEPTH, MAX_NODES, SCREEN_DEPTH

# Names for the type checker only: importing typing would slow `memprobe run` down.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

_OTHER_BREAKS = (b"\r", b"\xc2\x85", b"\xe2\x80\xa8", b"\xe2\x80\xa9")  # libyaml breaks lines at these too
_COMPACT = (b"- ", b"-\t", b"? ", b"?\t", b": ", b":\t")
_INDENT = re.compile(rb"(?m)^ *")


def where(name: str, mark: Any) -> str:
    """'NAME:LINE:COL' for a yaml mark, or NAME alone without one."""
    if mark is None:
        return name
    return "%s:%d:%d" % (name, mark.line + 1, mark.column + 1)


def needs_exact_screen(data: bytes, EventParser: Any = None, name: Optional[str] = None) -> bool:
    """True unless byte counts prove the document shallow and small enough.

    Depth: each flow level needs a '[' or '{'. Block collections still open at
    a line start sit at distinct columns up to its indentation (two per column:
    a mapping and a sequence may share one), and a line opens more only through
    compact indicators ('- ', '? ', ': '); so block depth is at most
    2 * (longest line + 1), or, tighter, 2 * (deepest indent + 2) + compact
    indicators. Nodes: every node but the first follows one of the separators
    counted here; libyaml's own event count (raw_parse, in C) settles the rest.
    Documents with line breaks other than '\\n' always take the exact scan.
    """
    if len(data) <= 512:
        return False
    if any(brk in data for brk in _OTHER_BREAKS):
        return True
    flow = data.count(b"[") + data.count(b"{")
    if _may_be_too_deep(data, flow):
        return True
    nodes = (data.count(b",") + data.count(b":") + data.count(b"-") + data.count(b"\n")
             + data.count(b"?") + flow + 1)
    if nodes <= MAX_NODES:
        return False
    return _too_many_events(data, EventParser, name)


def _may_be_too_deep(data, flow):
    longest = max(map(len, data.split(b"\n")))
    if 2 * (longest + 1) + flow + 2 <= SCREEN_DEPTH:
        return False
    indent = max(map(len, _INDENT.findall(data)))
    compact = sum(data.count(c) for c in _COMPACT)
    return 2 * (indent + 2) + compact + flow + 2 > SCREEN_DEPTH


def _too_many_events(data, EventParser, name):
    """libyaml's event count (in C: no Python object per event) against MAX_NODES; True
    when the count cannot be had cheaply."""
    raw_parse = getattr(EventParser, "raw_parse", None) if EventParser is not None else None
    if raw_parse is None:
        return True
    parser = EventParser(data)
    try:
        events = parser.raw_parse()
    finally:
        parser.dispose()
    # A scalar is one event, a collection two: nodes lie in [events / 2, events].
    if events > 2 * MAX_NODES + 4:
        raise ReportError("%s: more than %d values" % (name, MAX_NODES))
    return events > MAX_NODES


def exact_screen(EventParser: Any, data: bytes, name: str) -> None:
    """Walk the event stream (no recursion, nothing kept) to bound depth and size."""
    from yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, ScalarEvent

    parser = EventParser(data)
    depth = nodes = 0
    try:
        while True:
            event = parser.get_event()
            if event is None:
                break
            cls = event.__class__
            if issubclass(cls, CollectionStartEvent):
                depth += 1
                nodes += 1
                if depth > MAX_DEPTH:
                    raise ReportError("%s: nested deeper than %d levels" % (where(name, event.start_mark), MAX_DEPTH))
            elif issubclass(cls, CollectionEndEvent):
                depth -= 1
            elif cls is ScalarEvent or cls is AliasEvent:
                nodes += 1
            if nodes > MAX_NODES:
                raise ReportError("%s: more than %d values" % (where(name, event.start_mark), MAX_NODES))
    finally:
        if hasattr(parser, "dispose"):
            parser.dispose()
