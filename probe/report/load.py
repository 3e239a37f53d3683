"""The one loader for untrusted report files (and expectation files).

Reports come from other machines and bug trackers, so everything here assumes a
hostile author. A loaded document is always plain JSON-shaped data: dicts with
str keys, lists, str, int, finite float, bool and None. Every failure is a
ReportError (or InputError for I/O) whose message is one line naming the file
and, where the parser knows it, the line: ``FILE:LINE:COL: problem``.

YAML rules, beyond yaml's safe loader:
- only the plain types above; any other tag (``!!python/object``, ``!!binary``,
  ``!!set``, local ``!tags``) is refused, never constructed;
- no aliases (``*name``) and no merge keys (``<<``): this shuts out
  billion-laughs expansion; memprobe never writes either;
- no duplicate keys, no non-string keys, no NaN/infinity;
- at most MAX_DEPTH levels of nesting and MAX_NODES nodes, checked before
  libyaml builds its node tree (its composer recurses in C and crashes the
  interpreter on a 100,000-deep ``[[[[...``);
- at most max_bytes bytes (MEMPROBE_MAX_REPORT_BYTES, default 4 MiB).
"""

import json
import math
import os
import re
import stat
import sys

from probe.errors import InputError, ReportError
from probe.report.locate import Locator, format_problem  # noqa: F401 - part of this module's API

from probe.vocab import SUPPORTED_SCHEMA_VERSIONS  # noqa: E402
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64          # real reports nest about 6 levels
MAX_NODES = 100000      # real reports hold about 1,000 nodes
# The cheap pre-screen below bounds depth and node count from byte counts; only
# documents whose bound exceeds these run the exact (slower) event scan.
_SCREEN_DEPTH = 2000    # libyaml's composer was seen to survive 10,000 levels
_MAX_LINE = 200         # longest shown line in an error message
_READ_PIECE = 1 << 20
MAX_BYTES_SETTING = 1 << 30   # the largest MEMPROBE_MAX_REPORT_BYTES taken (1 GiB)
_MAX_DIGITS = 100       # int() of a huge digit string is quadratic on Pythons without a limit

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


def max_bytes_default():
    """The size limit: MEMPROBE_MAX_REPORT_BYTES if set, a whole number of bytes from 1 to
    MAX_BYTES_SETTING; anything else is an input error rather than a silent default."""
    raw = os.environ.get("MEMPROBE_MAX_REPORT_BYTES")
    if not raw:
        return DEFAULT_MAX_BYTES
    text = raw.strip()
    value = int(text) if text.isdigit() and len(text) <= 12 else 0
    if not 0 < value <= MAX_BYTES_SETTING:
        raise InputError("MEMPROBE_MAX_REPORT_BYTES=%s: expected a whole number of bytes from 1 to %d"
                         % (clean(raw, 40), MAX_BYTES_SETTING))
    return value


def _read_at_most(stream, limit):
    """Up to limit + 1 bytes, read in pieces: a large limit must not allocate it up front."""
    pieces = []
    left = limit + 1
    while left > 0:
        piece = stream.read(min(left, _READ_PIECE))
        if not piece:
            break
        pieces.append(piece)
        left -= len(piece)
    return b"".join(pieces)


def clean(text, limit=_MAX_LINE):
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


def display_name(path):
    return clean(os.fspath(path) if not isinstance(path, str) else path, limit=0)


# --------------------------------------------------------------------------- reading

def read_bytes(path, max_bytes=None, regular_only=False):
    """The bytes of a file (or stdin for '-'), refusing anything over max_bytes.

    regular_only: refuse anything but a regular file (a FIFO would block, a device
    could be endless) without reading from it; see open_regular().
    """
    limit = max_bytes_default() if max_bytes is None else max_bytes
    name = display_name(path)
    try:
        if path == "-":
            name = "<stdin>"
            if sys.stdin is None:    # started with stdin closed (`<&-`)
                raise InputError("<stdin>: cannot read: standard input is closed")
            data = _read_at_most(sys.stdin.buffer, limit)
        else:
            with (open_regular(path, name) if regular_only else open(path, "rb")) as stream:
                try:
                    size = os.fstat(stream.fileno()).st_size
                except OSError:
                    size = 0
                if size > limit:
                    raise ReportError("%s: file is %d bytes, above the %d-byte limit for a report "
                                      "(set MEMPROBE_MAX_REPORT_BYTES to raise it)" % (name, size, limit))
                data = _read_at_most(stream, limit)
    except IsADirectoryError:
        raise InputError("%s: is a directory" % name) from None
    except OSError as exc:
        raise InputError("%s: cannot read: %s" % (name, exc.strerror or exc)) from None
    if len(data) > limit:
        raise ReportError("%s: more than %d bytes, above the limit for a report "
                          "(set MEMPROBE_MAX_REPORT_BYTES to raise it)" % (name, limit))
    return data


_FILE_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


def file_kind(mode):
    """'a FIFO', 'a character device', ... for a st_mode that is not a regular file, else None."""
    for test, words in _FILE_KINDS:
        if test(mode):
            return words
    return None if stat.S_ISREG(mode) else "not a regular file"


def open_regular(path, name):
    """A binary stream on a regular file, or InputError naming what the path is instead.

    The caller has usually checked with stat() already; a file swapped for a FIFO or a
    device in between is opened non-blocking (so the open cannot hang) and refused
    after fstat(), before any read.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    try:
        kind = file_kind(os.fstat(fd).st_mode)
        if kind:
            raise InputError("%s: %s, not a regular file; not read" % (name, kind))
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


# --------------------------------------------------------------------------- parsing

def parse_document(data, name, fmt=None):
    """Parse untrusted bytes (YAML or JSON) into plain data, or raise ReportError.

    fmt: 'json', 'yaml' or None to decide from the content (a document whose
    first character is '{' is tried as JSON first, which is much faster).
    """
    name = display_name(name)
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if fmt is None:
        head = data[:64].lstrip()
        fmt = "json?" if head.startswith(b"{") else "yaml"
    if fmt in ("json", "json?"):
        try:
            return _parse_json(data, name)
        except ReportError:
            if fmt == "json":
                raise
        # '{' also starts a YAML flow mapping: fall through to YAML.
    return _parse_yaml(data, name)


def _bad_constant(token):
    raise ValueError("%s is not a number a report may hold" % token)


def _parse_json(data, name):
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
    if len(digits) > _MAX_DIGITS:
        raise ValueError("number with %d digits is too long for a report" % len(digits))
    return int(digits)


def _json_float(digits):
    value = float(digits) if len(digits) <= _MAX_DIGITS else math.inf
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


def _pure_python_classes():
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


def _yaml_classes():
    """(parser class for nodes, parser class for events, yaml module), built once."""
    global _YAML_CLASSES
    if _YAML_CLASSES is None:
        import yaml
        from yaml.resolver import Resolver
        try:
            from yaml._yaml import CParser

            from yaml.nodes import ScalarNode, SequenceNode

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
                    if kind is ScalarNode:
                        if implicit[0]:
                            # A plain scalar's tag depends on its text alone, and report
                            # texts repeat (keys, null, outcomes): remember short ones.
                            tag = resolved.get(value)
                            if tag is None:
                                tag = base_resolve(self, kind, value, implicit)
                                if len(value) <= 64 and len(resolved) < 20000:
                                    resolved[value] = tag
                            return tag
                        return _STR
                    return _SEQ if kind is SequenceNode else _MAP

            EventParser = CParser
        except ImportError:  # PyYAML without libyaml: the pure-Python pieces
            NodeParser, EventParser = _pure_python_classes()

        _YAML_CLASSES = (NodeParser, EventParser, yaml)
    return _YAML_CLASSES


_YAML_CLASSES = None


def _parse_yaml(data, name):
    NodeParser, EventParser, yaml = _yaml_classes()
    try:
        if _needs_exact_screen(data, EventParser, name):
            _exact_screen(EventParser, data, name)
        parser = NodeParser(data)
        try:
            node = parser.get_single_node()
        finally:
            parser.dispose()
    except yaml.MarkedYAMLError as exc:
        raise ReportError(_yaml_error_line(name, exc)) from None
    except yaml.reader.ReaderError as exc:
        line = data[: exc.position].count(b"\n") + 1 if isinstance(exc.position, int) else "?"
        char = exc.character
        char = "#x%04x" % (char if isinstance(char, int) else ord(char[:1] or "\0"))
        raise ReportError("%s:%s: unacceptable character %s at byte %s (%s); a report is UTF-8 text"
                          % (name, line, char, exc.position, clean(exc.reason, 60))) from None
    except yaml.YAMLError as exc:
        raise ReportError("%s: invalid YAML: %s" % (name, clean(exc))) from None
    except RecursionError:
        raise ReportError("%s: nesting too deep" % name) from None
    except (ValueError, UnicodeError, TypeError) as exc:
        raise ReportError("%s: invalid YAML: %s" % (name, clean(exc))) from None
    if node is None:
        raise ReportError("%s: empty document" % name)
    builder = _Builder(name, track_aliases=b"*" in data)
    try:
        return builder.build(node, 0)
    except RecursionError:
        raise ReportError("%s: nesting too deep" % name) from None


_OTHER_BREAKS = (b"\r", b"\xc2\x85", b"\xe2\x80\xa8", b"\xe2\x80\xa9")  # libyaml breaks lines at these too
_COMPACT = (b"- ", b"-\t", b"? ", b"?\t", b": ", b":\t")
_INDENT = None


def _needs_exact_screen(data, EventParser=None, name=None):
    """True unless byte counts prove the document shallow and small enough.

    Depth: each flow level needs a '[' or '{'. Block collections still open at
    a line start sit at distinct columns up to its indentation (two per column:
    a mapping and a sequence may share one), and a line opens more only through
    compact indicators ('- ', '? ', ': '); so block depth is at most
    2 * (longest line + 1), or, tighter, 2 * (deepest indent + 2) + compact
    indicators. Nodes: every node but the first follows one of the separators
    counted here; libyaml's own event count (raw_parse, in C) settles the rest.
    Documents with line breaks other than '\n' always take the exact scan.
    """
    global _INDENT
    if len(data) <= 512:
        return False
    if any(brk in data for brk in _OTHER_BREAKS):
        return True
    flow = data.count(b"[") + data.count(b"{")
    longest = max(map(len, data.split(b"\n")))
    if 2 * (longest + 1) + flow + 2 > _SCREEN_DEPTH:
        if _INDENT is None:
            _INDENT = re.compile(rb"(?m)^ *")
        indent = max(map(len, _INDENT.findall(data)))
        compact = sum(data.count(c) for c in _COMPACT)
        if 2 * (indent + 2) + compact + flow + 2 > _SCREEN_DEPTH:
            return True
    nodes = (data.count(b",") + data.count(b":") + data.count(b"-") + data.count(b"\n")
             + data.count(b"?") + flow + 1)
    if nodes <= MAX_NODES:
        return False
    raw_parse = getattr(EventParser, "raw_parse", None) if EventParser is not None else None
    if raw_parse is None:
        return True
    parser = EventParser(data)
    try:
        events = parser.raw_parse()  # in C: no Python object per event
    finally:
        parser.dispose()
    # A scalar is one event, a collection two: nodes lie in [events / 2, events].
    if events > 2 * MAX_NODES + 4:
        raise ReportError("%s: more than %d values" % (name, MAX_NODES))
    return events > MAX_NODES


def _exact_screen(EventParser, data, name):
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
                    raise ReportError("%s: nested deeper than %d levels" % (_where(name, event.start_mark), MAX_DEPTH))
            elif issubclass(cls, CollectionEndEvent):
                depth -= 1
            elif cls is ScalarEvent or cls is AliasEvent:
                nodes += 1
            if nodes > MAX_NODES:
                raise ReportError("%s: more than %d values" % (_where(name, event.start_mark), MAX_NODES))
    finally:
        if hasattr(parser, "dispose"):
            parser.dispose()


def _where(name, mark):
    if mark is None:
        return name
    return "%s:%d:%d" % (name, mark.line + 1, mark.column + 1)


def _yaml_error_line(name, exc):
    mark = exc.problem_mark or exc.context_mark
    parts = [p for p in (exc.context, exc.problem) if p]
    text = ", ".join(parts) if parts else "invalid YAML"
    return "%s: %s" % (_where(name, mark), clean(" ".join(text.split())))


_SAFE = None
_NODE_CLASSES = None


class _Builder:
    """Node tree -> plain data, refusing everything a report never needs."""

    def __init__(self, name, track_aliases):
        self.name = name
        # An alias makes yaml reuse a node object, so seeing one twice means an
        # alias. Only documents containing '*' can hold one.
        self.seen = set() if track_aliases else None
        global _SAFE, _NODE_CLASSES
        if _SAFE is None:
            from yaml.constructor import SafeConstructor
            from yaml.nodes import MappingNode, ScalarNode, SequenceNode

            _SAFE = SafeConstructor()  # only its stateless scalar converters are used
            _NODE_CLASSES = (ScalarNode, SequenceNode, MappingNode)
        self._safe = _SAFE
        self._classes = _NODE_CLASSES

    def fail(self, node, message):
        raise ReportError("%s: %s" % (_where(self.name, getattr(node, "start_mark", None)), message))

    def build(self, node, depth):
        ScalarNode, SequenceNode, MappingNode = self._classes
        seen = self.seen
        if seen is not None:
            if id(node) in seen:
                self.fail(node, "aliases (*name) are not allowed in a report")
            seen.add(id(node))
        cls = node.__class__
        tag = node.tag
        if cls is ScalarNode:
            if tag == _STR:
                return node.value
            return self.scalar(node, tag)
        if depth >= MAX_DEPTH:
            self.fail(node, "nested deeper than %d levels" % MAX_DEPTH)
        if cls is MappingNode:
            if tag != _MAP:
                self.fail(node, self.tag_message(tag))
            result = {}
            for key_node, value_node in node.value:
                if key_node.__class__ is ScalarNode and key_node.tag == _STR:
                    key = key_node.value
                    if seen is not None:
                        if id(key_node) in seen:
                            self.fail(key_node, "aliases (*name) are not allowed in a report")
                        seen.add(id(key_node))
                else:
                    key = self.key(key_node, depth)
                if key in result:
                    self.fail(key_node, "duplicate key %r" % clean(key, 60))
                result[key] = self.build(value_node, depth + 1)
            return result
        if cls is SequenceNode:
            if tag != _SEQ:
                self.fail(node, self.tag_message(tag))
            return [self.build(item, depth + 1) for item in node.value]
        self.fail(node, "unexpected YAML node")

    def key(self, key_node, depth):
        if key_node.tag == "tag:yaml.org,2002:merge":
            self.fail(key_node, "merge keys (<<) are not allowed in a report")
        key = self.build(key_node, depth + 1)
        if not isinstance(key, str):
            self.fail(key_node, "mapping key %s is a %s, not a string (quote it)"
                      % (clean(repr(key), 60), _type_word(key)))
        return key

    def scalar(self, node, tag):
        safe = self._safe
        try:
            if tag == _INT:
                if len(node.value) > _MAX_DIGITS:
                    self.fail(node, "number with %d characters is too long for a report" % len(node.value))
                return safe.construct_yaml_int(node)
            if tag == _BOOL:
                return safe.construct_yaml_bool(node)
            if tag == _NULL:
                return None
            if tag == _FLOAT:
                value = safe.construct_yaml_float(node)
                if not math.isfinite(value):
                    self.fail(node, "non-finite number %s is not allowed in a report" % clean(node.value, 40))
                return value
            if tag == _TIMESTAMP:
                # An unquoted date: keep the text (as JSON would) instead of a datetime.
                return node.value
        except ReportError:
            raise
        except (ValueError, KeyError, IndexError) as exc:
            self.fail(node, "bad %s value %s (%d characters): %s"
                      % (tag.rsplit(":", 1)[-1], clean(repr(node.value), 24), len(node.value), clean(exc, 80)))
        self.fail(node, self.tag_message(tag))

    @staticmethod
    def tag_message(tag):
        shown = tag
        if tag.startswith("tag:yaml.org,2002:"):
            shown = "!!" + tag[len("tag:yaml.org,2002:"):]
        return "tag %s is not allowed in a report (plain YAML types only)" % clean(shown, 80)


def _type_word(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


type_word = _type_word


# --------------------------------------------------------------------------- reports

def version_problem(doc):
    """None when doc is a mapping with a supported schema_version, else the problem."""
    if not isinstance(doc, dict):
        return "a report is a mapping, this document is a %s" % _type_word(doc)
    version = doc.get("schema_version")
    if type(version) is int and version in SUPPORTED_SCHEMA_VERSIONS:
        return None
    supported = ", ".join(str(v) for v in SUPPORTED_SCHEMA_VERSIONS)
    if "schema_version" not in doc:
        what = "no schema_version"
    else:
        what = "schema_version %s" % clean(repr(version), 40)
    return "%s is not supported; this memprobe reads schema_version %s" % (what, supported)


def check_version(doc, name):
    """Raise ReportError unless doc is a mapping with a supported schema_version."""
    problem = version_problem(doc)
    if problem:
        raise ReportError("%s: %s" % (name, problem))


def light_problems(doc):
    """Type checks of the fields the collector commands read, fast enough for matrix.

    Returns problem strings ("path: what"). Assumes version_problem() found none.
    """
    problems = []
    host = doc.get("host")
    if not isinstance(host, dict):
        problems.append("host: expected a mapping, got %s" % _type_word(host))
    else:
        for key in ("os", "hostname"):
            if not isinstance(host.get(key), str):
                problems.append("host.%s: expected a string, got %s" % (key, _type_word(host.get(key))))
        for key in ("kernel_release", "machine", "arch"):
            if host.get(key) is not None and not isinstance(host.get(key), str):
                problems.append("host.%s: expected a string or null, got %s" % (key, _type_word(host.get(key))))
    process = doc.get("process")
    if process is not None and not isinstance(process, dict):
        problems.append("process: expected a mapping, got %s" % _type_word(process))
    if not isinstance(doc.get("generated_at", ""), str):
        problems.append("generated_at: expected a string, got %s" % _type_word(doc.get("generated_at")))
    summary = doc.get("summary")
    if not isinstance(summary, dict):
        problems.append("summary: expected a mapping, got %s" % _type_word(summary))
    else:
        for cap, entry in summary.items():
            if not isinstance(entry, dict):
                problems.append("summary.%s: expected a mapping, got %s" % (clean(cap, 60), _type_word(entry)))
            elif not isinstance(entry.get("state"), str):
                problems.append("summary.%s.state: expected a string, got %s"
                                % (clean(cap, 60), _type_word(entry.get("state"))))
            elif "text" in entry and not isinstance(entry["text"], str):
                problems.append("summary.%s.text: expected a string, got %s"
                                % (clean(cap, 60), _type_word(entry["text"])))
    probes = doc.get("probes")
    if not isinstance(probes, dict):
        problems.append("probes: expected a mapping, got %s" % _type_word(probes))
    else:
        for pid, result in probes.items():
            if not isinstance(result, dict):
                problems.append("probes.%s: expected a mapping, got %s" % (clean(pid, 60), _type_word(result)))
                continue
            if not isinstance(result.get("outcome"), str):
                problems.append("probes.%s.outcome: expected a string, got %s"
                                % (clean(pid, 60), _type_word(result.get("outcome"))))
            for key in ("step", "errno_name", "signal", "detail"):
                if result.get(key) is not None and not isinstance(result[key], str):
                    problems.append("probes.%s.%s: expected a string or null, got %s"
                                    % (clean(pid, 60), key, _type_word(result[key])))
            attribution = result.get("attribution")
            if attribution is not None:
                if not isinstance(attribution, list):
                    problems.append("probes.%s.attribution: expected a list, got %s"
                                    % (clean(pid, 60), _type_word(attribution)))
                else:
                    for i, item in enumerate(attribution):
                        if not isinstance(item, dict) or not isinstance(item.get("mechanism"), str):
                            problems.append("probes.%s.attribution[%d]: expected a mapping with a "
                                            "mechanism string" % (clean(pid, 60), i))
    return problems


def schema_problems(doc):
    """The full JSON-Schema check (probe.report.validator, the lead's validator)."""
    try:
        from probe.report.validator import validate
    except ImportError:  # validator not in this build: the light checks stand alone
        return []
    return [clean(p, 300) for p in validate(doc)]


def report_problems(doc, full=True):
    """All problems of a parsed report (version first: nothing else is meaningful without it).

    full: the JSON Schema check, then (if that passes) the light checks, which
    guard what the collector code assumes; otherwise the light checks only.
    """
    problem = version_problem(doc)
    if problem:
        return [problem]
    if full:
        problems = schema_problems(doc)
        if problems:
            return problems
    return light_problems(doc)


def load_report(path, full=True, max_bytes=None):
    """Read, parse and validate one report; raise ReportError naming the first problem."""
    data = read_bytes(path, max_bytes)
    name = "<stdin>" if path == "-" else display_name(path)
    doc = parse_document(data, name, fmt="json" if str(path).endswith(".json") else None)
    check_version(doc, name)
    problems = report_problems(doc, full=full)
    if problems:
        raise ReportError(format_problem(name, data, problems[0], len(problems) - 1))
    return doc
