"""An expectations file: entries, `any:` / `all:` groups and `when:` sections.

    nx: enforced                        # an entry (see _expect_entry)
    strategies: {rwx_mapping: blocked}
    any:                                # holds when one member holds
      - strategies: {wx_flip: works}
      - strategies: {dual_mapping: works}
    all: [...]                          # holds when every member holds
    sections:                           # applied only where `when` matches the report's host
      - when: {os: freebsd, arch: [aarch64, x86_64]}
        wx_flip: blocked

A group member is a mapping of any entries (several entries in one member must all
hold), or a group again. Every section whose `when` matches applies, in file order;
the others are left out of the result. Typos are refused wherever they are, also in
a section this host does not match, so a file is known good before the matrix runs.
"""

from typing import Iterator

from probe.gate.expect_entry import Expectation, parse_entry, parse_strategy
from probe.render.text import text
from probe.errors import InputError
from probe.report.load import type_word as _type

GROUPS = ("any", "all")
# host fields a section may match on; distribution means host.distribution.id
WHEN_KEYS = ("os", "arch", "machine", "kernel_release", "distribution", "pointer_bits", "byte_order")


class Group:
    """`any:` or `all:`: members, each a list of items that must all hold."""

    kind = "group"

    def __init__(self, mode: str, members: "list[list]", path: str) -> None:
        self.key = mode
        self.mode = mode
        self.members = members
        self.path = path

    def describe(self) -> str:
        joiner = " | " if self.mode == "any" else " & "
        parts = []
        for member in self.members:
            words = " & ".join(item.describe() for item in member)
            parts.append("(%s)" % words if len(member) > 1 else words)
        return "%s of [%s]" % (self.mode, joiner.join(parts))


class Section:
    """`- when: {...}` and the items that apply where it matches."""

    def __init__(self, path: str, when: "dict[str, tuple[str, ...]]", items: list) -> None:
        self.path = path
        self.when = when      # {host field: accepted values (strings)}
        self.items = items

    def applies(self, report: dict) -> bool:
        """True when every `when` key matches the report's host field."""
        host = report.get("host") if isinstance(report, dict) else None
        host = host if isinstance(host, dict) else {}
        for key, accepted in self.when.items():
            value = host_value(host, key)
            if value is None or str(value) not in accepted:
                return False
        return True

    def describe(self) -> str:
        return "%s (when %s)" % (self.path, ", ".join(
            "%s %s" % (key, "|".join(text(v, 40) for v in values)) for key, values in self.when.items()))


def host_value(host: dict, key: str) -> object:
    """The report's value for a `when` key (None when the report lacks it)."""
    if key == "arch":
        return host.get("arch") or host.get("machine")
    if key == "distribution":
        dist = host.get("distribution")
        return dist.get("id") if isinstance(dist, dict) else None
    value = host.get(key)
    return None if isinstance(value, (dict, list, bool)) else value


# --------------------------------------------------------------------------- the file

class ExpectationFile(list):
    """The items of one file, with what is needed to point at its lines."""

    def __init__(self, items: list, name: str, data: bytes) -> None:
        super().__init__(items)
        self.name = name
        self.data = data
        self._locator = None

    def error(self, problem: str, more: int = 0) -> InputError:
        from probe.report import load as _load

        return InputError(_load.format_problem(self.name, self.data, problem, more)
                          .replace("run memprobe validate", "fix them in turn"))

    def line(self, path: str) -> "int | None":
        """The line number of an item's path in the file, or None (JSON, or not found)."""
        from probe.report.locate import Locator

        if self._locator is None:
            self._locator = Locator(self.data)
        where = self._locator("%s: -" % path)
        return int(where.split(":")[0]) if where else None


def load_expectations(path: str) -> ExpectationFile:
    """Parse and check an expectations file; InputError with FILE:LINE on the first problem."""
    from probe.report import load as _load

    data = _load.read_bytes(path)
    name = "<stdin>" if path == "-" else _load.display_name(path)
    doc = _load.parse_document(data, name, fmt="json" if str(path).endswith(".json") else None)
    expectations, problems = parse_expectations(doc)
    result = ExpectationFile(expectations, name, data)
    if problems:
        raise result.error(problems[0], len(problems) - 1)
    if not expectations:
        raise InputError("%s: no expectations in the file" % name)
    return result


def parse_expectations(doc: object) -> "tuple[list, list[str]]":
    """(items, problems) from parsed plain data: expectations, groups and sections."""
    problems = []
    if not isinstance(doc, dict):
        return [], ["expectations: expected a mapping of probe ids / capabilities, got %s" % _type(doc)]
    return _parse_mapping(doc, "", problems, top=True), problems


def _parse_mapping(doc, prefix, problems, top):
    items = []
    for key, value in doc.items():
        path = prefix + text(key, 60)
        if key in ("probes", "capabilities", "strategies"):
            items.extend(_parse_block(key, value, path, problems))
        elif key in GROUPS:
            items.append(_parse_group(key, value, path, problems))
        elif key == "sections":
            items.extend(_parse_top_sections(value, path, problems, top))
        elif key in ("when", "schema_version"):
            _check_top_key(key, value, path, problems, top)
        else:
            items.append(parse_entry(key, value, path, None, problems))
    return [item for item in items if item is not None]


def _parse_top_sections(value, path, problems, top):
    if top:
        return _parse_sections(value, path, problems)
    problems.append("%s: sections go at the top level of the file only" % path)
    return []


def _check_top_key(key, value, path, problems, top):
    """`when` and `schema_version`: keys that carry no expectation of their own."""
    if key == "when":
        problems.append("%s: `when` belongs in an entry of the top-level sections: list" % path)
    elif not top:
        problems.append("%s: schema_version goes at the top level of the file only" % path)
    elif value != 1:
        problems.append("schema_version: this memprobe reads expectations version 1")


def _parse_block(key, value, path, problems):
    if not isinstance(value, dict):
        problems.append("%s: expected a mapping, got %s" % (path, _type(value)))
        return []
    if not value:
        problems.append("%s: empty mapping" % path)
        return []
    if key == "strategies":
        return [parse_strategy(sub, spec, "%s.%s" % (path, text(sub, 60)), problems)
                for sub, spec in value.items()]
    kind = "probe" if key == "probes" else "capability"
    return [parse_entry(sub, spec, "%s.%s" % (path, text(sub, 60)), kind, problems)
            for sub, spec in value.items()]


def _parse_group(mode, value, path, problems):
    if not isinstance(value, list):
        problems.append("%s: expected a list of expectations such as [{wx_flip: works}], got %s"
                        % (path, _type(value)))
        return None
    if not value:
        problems.append("%s: empty group; list at least one expectation" % path)
        return None
    before = len(problems)
    members = []
    for index, member in enumerate(value):
        member_path = "%s[%d]" % (path, index)
        if not isinstance(member, dict):
            problems.append("%s: expected a mapping such as {wx_flip: works}, got %s"
                            % (member_path, _type(member)))
        elif not member:
            problems.append("%s: empty mapping" % member_path)
        else:
            members.append(_parse_mapping(member, member_path + ".", problems, top=False))
    if len(problems) > before or not all(members):
        if len(problems) == before:
            problems.append("%s: a member says nothing" % path)
        return None
    return Group(mode, members, path)


def _parse_sections(value, path, problems):
    if not isinstance(value, list) or not value:
        problems.append("%s: expected a list of sections, each {when: {os: ...}, <expectations>}, got %s"
                        % (path, "an empty list" if isinstance(value, list) else _type(value)))
        return []
    sections = [_parse_section(entry, "%s[%d]" % (path, index), problems) for index, entry in enumerate(value)]
    return [section for section in sections if section is not None]


def _parse_section(entry, section_path, problems):
    """One `- when: ...` entry: a Section, or None with a problem appended."""
    if not isinstance(entry, dict):
        problems.append("%s: expected a mapping with when: and expectations, got %s"
                        % (section_path, _type(entry)))
        return None
    if "when" not in entry:
        problems.append("%s: a section needs when: {%s: ...}" % (section_path, ", ".join(WHEN_KEYS[:2])))
        return None
    when = _parse_when(entry["when"], section_path + ".when", problems)
    rest = {key: spec for key, spec in entry.items() if key != "when"}
    if not rest:
        problems.append("%s: no expectations besides when" % section_path)
        return None
    items = _parse_mapping(rest, section_path + ".", problems, top=False)
    return Section(section_path, when, items) if when is not None else None


def _parse_when(spec, path, problems):
    if not isinstance(spec, dict) or not spec:
        problems.append("%s: expected a mapping of host fields such as {os: freebsd, arch: aarch64}, got %s"
                        % (path, "an empty mapping" if isinstance(spec, dict) else _type(spec)))
        return None
    when = {}
    for key, wanted in spec.items():
        values = _when_values(key, wanted, "%s.%s" % (path, text(key, 40)), problems)
        if values is None:
            return None
        when[key] = values
    return when


def _when_values(key, wanted, field_path, problems):
    """The accepted values of one `when` key as strings, or None with a problem appended."""
    if key not in WHEN_KEYS:
        problems.append("%s: unknown host field; use %s" % (field_path, ", ".join(WHEN_KEYS)))
        return None
    values = wanted if isinstance(wanted, list) else [wanted]
    if not values:
        problems.append("%s: empty list" % field_path)
        return None
    bad = [value for value in values if not _is_when_value(value)]
    if bad:
        problems.append("%s: expected a value such as %s, got %s"
                        % (field_path, _WHEN_EXAMPLES.get(key, "linux"), _type(bad[0])))
        return None
    if key == "arch" and not _known_arches(values, field_path, problems):
        return None
    return tuple(str(v) for v in values)


def _is_when_value(value):
    """A host field value: a non-empty string or a number (true/false is neither)."""
    return not isinstance(value, bool) and isinstance(value, (str, int)) and value != ""


def _known_arches(values, field_path, problems):
    known = report_arches()
    bad = [v for v in values if known and v not in known]
    if bad:
        problems.append("%s: %r is not an architecture memprobe reports (%s)"
                        % (field_path, text(bad[0], 40), ", ".join(known)))
        return False
    return True


def report_arches() -> "tuple[str, ...]":
    """The host.arch values of the report schema: a `when: {arch: arm64}` would never match."""
    from probe.report import validator as _schema

    enum = _schema.load_schema()["properties"]["host"]["properties"]["arch"]["enum"]
    return tuple(a for a in enum if isinstance(a, str))


_WHEN_EXAMPLES = {"os": "linux or freebsd", "arch": "x86_64 or aarch64", "pointer_bits": "64",
                  "byte_order": "little", "distribution": "debian"}


# --------------------------------------------------------------------------- names

def leaves(items: list) -> Iterator[Expectation]:
    """Every probe or capability Expectation, also inside groups and sections."""
    for item in items:
        if isinstance(item, Section):
            yield from leaves(item.items)
        elif isinstance(item, Group):
            for member in item.members:
                yield from leaves(member)
        elif isinstance(item, Expectation):
            yield item


def known_names() -> "tuple[set[str], set[str]]":
    """(probe ids, capability names) this memprobe knows, for typo checks."""
    from probe.engine import probes as _probes
    from probe.render import text as _render

    return set(_probes.by_id()), set(_render.CAPABILITY_ORDER)


def resolve(expectations: list, report: "dict | None" = None) -> None:
    """Decide each flat key's kind and refuse names nobody knows (a typo must not
    pass as 'undecided'), in groups and sections too. Raises InputError."""
    probes, capabilities = known_names()
    if report is not None:
        probes.update(report.get("probes") or {})
        capabilities.update(report.get("summary") or {})
    for exp in leaves(expectations):
        if exp.kind is None:
            exp.kind = _kind_by_name(exp.key, probes, capabilities)
        problem = _unknown_name(exp, probes, capabilities)
        if not problem:
            continue
        if isinstance(expectations, ExpectationFile):
            raise expectations.error(problem)
        raise InputError(problem)


def _kind_by_name(key, probes, capabilities):
    """A flat key is a capability when the name is one (both: capability), else a probe."""
    in_probes, in_caps = key in probes, key in capabilities
    return "probe" if in_probes and not in_caps else "capability" if in_caps else None


def _unknown_name(exp, probes, capabilities):
    """The problem with an entry whose name this memprobe and the report do not know ('' if none)."""
    known = probes if exp.kind == "probe" else capabilities
    if exp.kind is not None and exp.key in known:
        return ""
    what = exp.kind or "probe or capability"
    choices = sorted(known if exp.kind else probes | capabilities)
    return "%s: unknown %s %r (known: %s)" % (exp.path, what, text(exp.key, 60),
                                              ", ".join(text(c, 60) for c in choices))
