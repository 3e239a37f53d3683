"""Where in a report's text a problem lies: 'FILE:LINE:COL: path: problem' lines."""

from __future__ import annotations

# Names for the type checker only: importing typing would slow `memprobe run` down.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional


class Locator:
    """Maps a problem's path ('$.a.b[2].c: ...') to 'LINE:COL' in the YAML text.

    Only used on the error path, so it can afford to compose the document again;
    it does so once, on first use.
    """

    def __init__(self, data: Optional[bytes]) -> None:
        self.data = data
        self._node = False

    def _root(self):
        if self._node is False:
            self._node = None
            data = self.data
            if data is not None and not data[:64].lstrip().startswith(b"{"):
                from probe.report.yaml_doc import yaml_classes
                from probe.report.yaml_screen import needs_exact_screen

                NodeParser, EventParser, _ = yaml_classes()
                try:
                    if not needs_exact_screen(data, EventParser, "locate"):
                        parser = NodeParser(data)
                        try:
                            self._node = parser.get_single_node()
                        finally:
                            parser.dispose()
                except Exception:  # noqa: BLE001 - locating is a nicety, never an error
                    self._node = None
        return self._node

    def __call__(self, problem: str) -> Optional[str]:
        path = _problem_path(problem)
        node = self._root() if path else None
        if node is None:
            return None
        mark = node.start_mark
        for part in path:
            nxt, nxt_mark = _step(node, part)
            if nxt is None:
                break
            node, mark = nxt, nxt_mark
        return "%d:%d" % (mark.line + 1, mark.column + 1)


def _step(node, part):
    """(child node, where it starts) for one path part: a mapping key's value (marked at the
    key) or a sequence item; (None, None) when there is none."""
    from yaml.nodes import MappingNode, SequenceNode

    if isinstance(node, MappingNode) and isinstance(part, str):
        for key_node, value_node in node.value:
            if getattr(key_node, "value", None) == part:
                return value_node, key_node.start_mark
    elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return node.value[part], node.value[part].start_mark
    return None, None


def _problem_path(problem):
    """Parse the leading path of a problem: 'a.b[1].c: msg', '$.a.b: msg' or '/a/b: msg'."""
    head, sep, _ = problem.partition(": ")
    if not sep or " " in head:
        return None
    if head.startswith("$"):
        head = head[1:].lstrip(".")
    return _pointer_parts(head) if head.startswith("/") else _dotted_parts(head)


def _pointer_parts(head):
    """'/a/0/b' -> ['a', 0, 'b'] (None for no parts)."""
    return [int(p) if p.isdigit() else p for p in head.split("/") if p] or None


def _dotted_parts(head):
    """'a.b[1].c' -> ['a', 'b', 1, 'c'] (None for no parts)."""
    return [part for chunk in head.split(".") for part in _chunk_parts(chunk)] or None


def _chunk_parts(chunk):
    """'b[1][2]' -> ['b', 1, 2]; 'c' -> ['c']."""
    if not ("[" in chunk and chunk.endswith("]")):
        return [chunk] if chunk else []
    base, _, rest = chunk.partition("[")
    parts = [base] if base else []
    parts.extend(int(index) if index.isdigit() else index for index in rest[:-1].split("]["))
    return parts


def format_problem(name: str, data: Optional[bytes], problem: str, more: int = 0,
                   locator: Optional["Locator"] = None) -> str:
    """'NAME:LINE:COL: problem' (or 'NAME: problem' where no line is known), noting how many more."""
    where = (locator or Locator(data))(problem)
    line = "%s:%s: %s" % (name, where, problem) if where else "%s: %s" % (name, problem)
    if more:
        line += " (and %d more problem%s; run memprobe validate)" % (more, "s" if more > 1 else "")
    return line
