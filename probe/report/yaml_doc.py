"""Untrusted YAML to plain data: screened (probe.report.yaml_screen), composed by
libyaml where present, then built by probe.report.yaml_builder's Builder."""

from __future__ import annotations


from probe.errors import ReportError
from probe.report.safe_text import clean
from probe.report.yaml_builder import MAP_TAG, SEQ_TAG, STR_TAG, Builder
from probe.report.yaml_screen import exact_screen, needs_exact_screen, where

# Names for the type checker only: importing typing would slow `memprobe run` down.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Tuple


def pure_python_classes() -> Tuple[type, type]:
    """(node parser, event parser) from PyYAML's pure-Python pieces, for a PyYAML built
    without libyaml."""
    from yaml.composer import Composer
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.resolver import Resolver
    from yaml.scanner import Scanner

    class NodeParser(Reader, Scanner, Parser, Composer, Resolver):
        def __init__(self, data):
            Reader.__init__(self, data)
            Scanner.__init__(self)
            Parser.__init__(self)
            Composer.__init__(self)
            Resolver.__init__(self)

    class EventParser(Reader, Scanner, Parser):
        def __init__(self, data):
            Reader.__init__(self, data)
            Scanner.__init__(self)
            Parser.__init__(self)

    return NodeParser, EventParser


def _libyaml_classes():
    """(node parser, event parser) on libyaml; ImportError without it."""
    from yaml._yaml import CParser
    from yaml.nodes import ScalarNode, SequenceNode
    from yaml.resolver import Resolver

    base_resolve = Resolver.resolve
    resolved = {}

    class NodeParser(CParser, Resolver):
        """libyaml's parser and composer with a leaner resolver: the composer calls
        back into Python for every node, which is a third of the parse time."""

        def __init__(self, data):
            CParser.__init__(self, data)
            Resolver.__init__(self)

        # Path resolvers are never registered here, so these per-node hooks can be
        # C builtins that do nothing useful instead of Python methods.
        descend_resolver = staticmethod(slice)
        ascend_resolver = staticmethod(tuple)

        def resolve(self, kind, value, implicit):
            if kind is not ScalarNode:
                return SEQ_TAG if kind is SequenceNode else MAP_TAG
            if not implicit[0]:
                return STR_TAG
            # A plain scalar's tag depends on its text alone, and report
            # texts repeat (keys, null, outcomes): remember short ones.
            tag = resolved.get(value)
            if tag is None:
                tag = base_resolve(self, kind, value, implicit)
                if len(value) <= 64 and len(resolved) < 20000:
                    resolved[value] = tag
            return tag

    return NodeParser, CParser


_YAML_CLASSES = None


def yaml_classes() -> Tuple[type, type, Any]:
    """(parser class for nodes, parser class for events, yaml module), built once."""
    global _YAML_CLASSES
    if _YAML_CLASSES is None:
        import yaml
        try:
            NodeParser, EventParser = _libyaml_classes()
        except ImportError:  # PyYAML without libyaml: the pure-Python pieces
            NodeParser, EventParser = pure_python_classes()
        _YAML_CLASSES = (NodeParser, EventParser, yaml)
    return _YAML_CLASSES


def parse_yaml(data: bytes, name: str) -> Any:
    """Parse untrusted YAML bytes into plain data, or raise ReportError."""
    node = _compose(data, name)
    if node is None:
        raise ReportError("%s: empty document" % name)
    builder = Builder(name, track_aliases=b"*" in data)
    try:
        return builder.build(node, 0)
    except RecursionError:
        raise ReportError("%s: nesting too deep" % name) from None


def _compose(data, name):
    """The node tree of data (None for an empty stream), screened first."""
    NodeParser, EventParser, yaml = yaml_classes()
    try:
        if needs_exact_screen(data, EventParser, name):
            exact_screen(EventParser, data, name)
        parser = NodeParser(data)
        try:
            return parser.get_single_node()
        finally:
            parser.dispose()
    except yaml.MarkedYAMLError as exc:
        raise ReportError(_yaml_error_line(name, exc)) from None
    except yaml.reader.ReaderError as exc:
        raise ReportError(_reader_error_line(name, data, exc)) from None
    except yaml.YAMLError as exc:
        raise ReportError("%s: invalid YAML: %s" % (name, clean(exc))) from None
    except RecursionError:
        raise ReportError("%s: nesting too deep" % name) from None
    except (ValueError, UnicodeError, TypeError) as exc:
        raise ReportError("%s: invalid YAML: %s" % (name, clean(exc))) from None


def _reader_error_line(name, data, exc):
    line = data[: exc.position].count(b"\n") + 1 if isinstance(exc.position, int) else "?"
    char = exc.character
    char = "#x%04x" % (char if isinstance(char, int) else ord(char[:1] or "\0"))
    return ("%s:%s: unacceptable character %s at byte %s (%s); a report is UTF-8 text"
            % (name, line, char, exc.position, clean(exc.reason, 60)))


def _yaml_error_line(name, exc):
    mark = exc.problem_mark or exc.context_mark
    parts = [p for p in (exc.context, exc.problem) if p]
    text = ", ".join(parts) if parts else "invalid YAML"
    return "%s: %s" % (where(name, mark), clean(" ".join(text.split())))
