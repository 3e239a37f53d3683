"""A composed YAML node tree to plain data, refusing everything a report never needs."""

from __future__ import annotations

import math

from probe.errors import ReportError
from probe.report.limits import MAX_DEPTH, MAX_DIGITS
from probe.report.safe_text import clean, type_word
from probe.report.yaml_screen import where

# Names for the type checker only: importing typing would slow `memprobe run` down.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

STR_TAG = "tag:yaml.org,2002:str"
SEQ_TAG = "tag:yaml.org,2002:seq"
MAP_TAG = "tag:yaml.org,2002:map"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"

_SAFE = None
_NODE_CLASSES = None


def _yaml_pieces():
    """(SafeConstructor instance, node classes), made once on first use."""
    global _SAFE, _NODE_CLASSES
    if _SAFE is None:
        from yaml.constructor import SafeConstructor
        from yaml.nodes import MappingNode, ScalarNode, SequenceNode

        _SAFE = SafeConstructor()  # only its stateless scalar converters are used
        _NODE_CLASSES = (ScalarNode, SequenceNode, MappingNode)
    return _SAFE, _NODE_CLASSES


class Builder:
    """Node tree -> plain data: only str, int, finite float, bool, None, lists and
    mappings with string keys; no aliases, merge keys, duplicate keys or other tags."""

    def __init__(self, name: str, track_aliases: bool) -> None:
        self.name = name
        # An alias makes yaml reuse a node object, so seeing one twice means an
        # alias. Only documents containing '*' can hold one.
        self.seen = set() if track_aliases else None
        self._safe, self._classes = _yaml_pieces()

    def fail(self, node: Any, message: str) -> NoReturn:
        raise ReportError("%s: %s" % (where(self.name, getattr(node, "start_mark", None)), message))

    def _mark_seen(self, node):
        if id(node) in self.seen:
            self.fail(node, "aliases (*name) are not allowed in a report")
        self.seen.add(id(node))

    def build(self, node: Any, depth: int) -> Any:
        """The plain value of node, found depth levels down."""
        ScalarNode, SequenceNode, MappingNode = self._classes
        if self.seen is not None:
            self._mark_seen(node)
        cls = node.__class__
        if cls is ScalarNode:
            return node.value if node.tag == STR_TAG else self.scalar(node, node.tag)
        if depth >= MAX_DEPTH:
            self.fail(node, "nested deeper than %d levels" % MAX_DEPTH)
        if cls is MappingNode:
            return self.mapping(node, depth)
        if cls is SequenceNode:
            if node.tag != SEQ_TAG:
                self.fail(node, self.tag_message(node.tag))
            return [self.build(item, depth + 1) for item in node.value]
        self.fail(node, "unexpected YAML node")

    def mapping(self, node: Any, depth: int) -> dict:
        if node.tag != MAP_TAG:
            self.fail(node, self.tag_message(node.tag))
        ScalarNode = self._classes[0]
        result = {}
        for key_node, value_node in node.value:
            if key_node.__class__ is ScalarNode and key_node.tag == STR_TAG:
                key = key_node.value
                if self.seen is not None:
                    self._mark_seen(key_node)
            else:
                key = self.key(key_node, depth)
            if key in result:
                self.fail(key_node, "duplicate key %r" % clean(key, 60))
            result[key] = self.build(value_node, depth + 1)
        return result

    def key(self, key_node: Any, depth: int) -> str:
        if key_node.tag == _MERGE:
            self.fail(key_node, "merge keys (<<) are not allowed in a report")
        key = self.build(key_node, depth + 1)
        if not isinstance(key, str):
            self.fail(key_node, "mapping key %s is a %s, not a string (quote it)"
                      % (clean(repr(key), 60), type_word(key)))
        return key

    def scalar(self, node: Any, tag: str) -> Any:
        try:
            return self._convert(node, tag)
        except ReportError:
            raise
        except (ValueError, KeyError, IndexError) as exc:
            self.fail(node, "bad %s value %s (%d characters): %s"
                      % (tag.rsplit(":", 1)[-1], clean(repr(node.value), 24), len(node.value), clean(exc, 80)))

    def _convert(self, node, tag):
        convert = _CONVERTERS.get(tag)
        if convert is None:
            self.fail(node, self.tag_message(tag))
        return convert(self, node)

    def _int(self, node):
        if len(node.value) > MAX_DIGITS:
            self.fail(node, "number with %d characters is too long for a report" % len(node.value))
        return self._safe.construct_yaml_int(node)

    def _float(self, node):
        value = self._safe.construct_yaml_float(node)
        if not math.isfinite(value):
            self.fail(node, "non-finite number %s is not allowed in a report" % clean(node.value, 40))
        return value

    def _bool(self, node):
        return self._safe.construct_yaml_bool(node)

    def _null(self, node):
        return None

    def _timestamp(self, node):
        # An unquoted date: keep the text (as JSON would) instead of a datetime.
        return node.value

    @staticmethod
    def tag_message(tag: str) -> str:
        shown = tag
        if tag.startswith("tag:yaml.org,2002:"):
            shown = "!!" + tag[len("tag:yaml.org,2002:"):]
        return "tag %s is not allowed in a report (plain YAML types only)" % clean(shown, 80)


_CONVERTERS = {
    _INT: Builder._int,
    _BOOL: Builder._bool,
    _NULL: Builder._null,
    _FLOAT: Builder._float,
    _TIMESTAMP: Builder._timestamp,
}
