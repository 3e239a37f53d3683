"""Where in a report's text a problem lies: 'FILE:LINE:COL: path: problem' lines."""


class Locator:
    """Maps a problem's path ('$.a.b[2].c: ...') to 'LINE:COL' in the YAML text.

    Only used on the error path, so it can afford to compose the document again;
    it does so once, on first use.
    """

    def __init__(self, data):
        self.data = data
        self._node = False

    def _root(self):
        if self._node is False:
            self._node = None
            data = self.data
            if data is not None and not data[:64].lstrip().startswith(b"{"):
                from probe.report.load import _needs_exact_screen, _yaml_classes

                NodeParser, _, _ = _yaml_classes()
                try:
                    if not _needs_exact_screen(data, _yaml_classes()[1], "locate"):
                        parser = NodeParser(data)
                        try:
                            self._node = parser.get_single_node()
                        finally:
                            parser.dispose()
                except Exception:  # noqa: BLE001 - locating is a nicety, never an error
                    self._node = None
        return self._node

    def __call__(self, problem):
        path = _problem_path(problem)
        node = self._root() if path else None
        if node is None:
            return None
        from yaml.nodes import MappingNode, SequenceNode

        mark = node.start_mark
        for part in path:
            nxt = None
            if isinstance(node, MappingNode) and isinstance(part, str):
                for key_node, value_node in node.value:
                    if getattr(key_node, "value", None) == part:
                        mark, nxt = key_node.start_mark, value_node
                        break
            elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                nxt = node.value[part]
                mark = nxt.start_mark
            if nxt is None:
                break
            node = nxt
        return "%d:%d" % (mark.line + 1, mark.column + 1)


def _problem_path(problem):
    """Parse the leading path of a problem: 'a.b[1].c: msg', '$.a.b: msg' or '/a/b: msg'."""
    head, sep, _ = problem.partition(": ")
    if not sep or " " in head:
        return None
    if head.startswith("$"):
        head = head[1:].lstrip(".")
    if head.startswith("/"):
        parts = [p for p in head.split("/") if p]
        return [int(p) if p.isdigit() else p for p in parts]
    parts = []
    for chunk in head.split("."):
        while "[" in chunk and chunk.endswith("]"):
            base, _, rest = chunk.partition("[")
            if base:
                parts.append(base)
            for index in rest[:-1].split("]["):
                parts.append(int(index) if index.isdigit() else index)
            chunk = ""
        if chunk:
            parts.append(chunk)
    return parts or None


def format_problem(name, data, problem, more=0, locator=None):
    where = (locator or Locator(data))(problem)
    line = "%s:%s: %s" % (name, where, problem) if where else "%s: %s" % (name, problem)
    if more:
        line += " (and %d more problem%s; run memprobe validate)" % (more, "s" if more > 1 else "")
    return line
