"""Helpers shared by the collector commands: labels, vocabularies, colour, output files."""

import argparse
import os
import sys
from collections.abc import Iterable

from probe.errors import InputError
from probe.render.perspective import PERSPECTIVES, add_perspective_argument  # noqa: F401 - for the commands
from probe.report.load import clean

# The engine's summary order; unknown capabilities from newer reports follow in the
# order they first appear.
from probe.vocab import CAPABILITIES as CAPABILITY_ORDER
from probe.vocab import OUTCOMES, STATES  # noqa: F401 - the collectors name them here

# Colour class of every verdict word: good (the strategy works / NX is on), bad,
# odd (a result that needs a look) and none (nothing decided).
TONE = {
    "works": "good", "enforced": "good", "allowed": "good",
    "blocked": "bad", "not_enforced": "bad", "denied": "bad", "crashed": "bad", "killed": "bad",
    "broken": "odd", "wrong_result": "odd", "timeout": "odd", "error": "odd",
    "unknown": "none", "skipped": "none", "missing": "none",
}


# Whoever hardens a host reads the same words the other way round (see
# probe.render.perspective).
_HARDENING_TONE = {"works": "bad", "allowed": "bad", "blocked": "good", "denied": "good",
                   "crashed": "good", "killed": "good"}


def tone(word: object, perspective: str = "jit") -> str:
    """The colour class of a verdict word ('none' for a word it does not know)."""
    if perspective == "hardening" and word in _HARDENING_TONE:
        return _HARDENING_TONE[word]
    return TONE.get(word, "none")


def legend(perspective: str = "jit") -> "tuple[str, str]":
    """What the good and bad colours stand for, in the user's point of view."""
    if perspective == "hardening":
        return "blocked / enforced", "works / not enforced"
    return "works / enforced", "blocked / not enforced"


def capability_probes(cap: str) -> "tuple[str, ...]":
    """The ids of the probes that feed a capability (none for a name this memprobe does not know)."""
    from probe.attribution.summary import capability_probes as feeding

    return feeding().get(cap, ())


def capability_names() -> frozenset:
    """The capabilities this memprobe knows: the engine's summary lines (the README lists the
    same names under *The report*)."""
    return frozenset(CAPABILITY_ORDER)


def blocked_by(doc: dict, cap: str) -> "list[str]":
    """Mechanisms the report names (confirmed or likely) for the probes behind a capability."""
    probes = doc.get("probes") or {}
    names = []
    for pid in capability_probes(cap):
        result = probes.get(pid)
        if not isinstance(result, dict) or result.get("outcome") not in ("denied", "crashed", "killed"):
            continue
        for item in result.get("attribution") or ():
            name = _named_mechanism(item)
            if name is not None and name not in names:
                names.append(name)
    return names


def order_capabilities(names: "list[str]") -> "list[str]":
    """Known capabilities in the engine's order, then the rest as first seen."""
    known = [c for c in CAPABILITY_ORDER if c in names]
    extra = [c for c in names if c not in CAPABILITY_ORDER]
    return known + extra


def text(value: object, limit: int = 200) -> str:
    """A document value as one safe line ('' for None)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return clean(value, limit)


def probe_detail(result: dict) -> str:
    """errno/signal/step of a verdict in a few words."""
    step = result.get("step")
    at = " at %s" % text(step, 40) if step else ""
    outcome = result.get("outcome")
    detail = _DETAIL_BY_OUTCOME.get(outcome, _other_detail) if isinstance(outcome, str) else _other_detail
    return detail(result, at)


def _get(mapping, *keys):
    for key in keys:
        if not isinstance(mapping, dict):
            return None
        mapping = mapping.get(key)
    return mapping


def context_tags(doc: dict) -> "list[str]":
    """What the probes ran under that changes results: shown next to the host label."""
    tags = []
    process = doc.get("process") if isinstance(doc.get("process"), dict) else {}
    mdwe = process.get("mdwe")
    if isinstance(mdwe, int) and not isinstance(mdwe, bool) and mdwe:
        tags.append("mdwe")
    mode = process.get("seccomp_mode")
    if mode == 2:
        tags.append("seccomp")
    elif mode == 1:
        tags.append("seccomp-strict")
    if process.get("read_implies_exec") is True:
        tags.append("read-implies-exec")
    emulation = _emulation_tag(doc)
    if emulation is not None:
        tags.append(emulation)
    return tags


def host_label(doc: dict, tags: "list[str] | None" = None) -> str:
    """os/arch/kernel/host, plus the confinement in brackets: 'linux/x86_64/6.18/vm [mdwe]'."""
    host = doc.get("host") if isinstance(doc.get("host"), dict) else {}
    arch = host.get("arch") or host.get("machine")
    parts = [host.get("os"), arch, host.get("kernel_release"), host.get("hostname")]
    label = "/".join(clean(p, 60) if isinstance(p, str) and p else "?" for p in parts)
    tags = context_tags(doc) if tags is None else tags
    if tags:
        label += " [%s]" % ", ".join(tags)
    return label


class Palette:
    """ANSI colours, or nothing: colour only on a TTY and when NO_COLOR is unset."""

    CODES = {"good": "32", "bad": "31", "odd": "33", "none": "2", "bold": "1", "dim": "2"}

    def __init__(self, enabled: bool, perspective: str = "jit") -> None:
        self.enabled = enabled
        self.perspective = perspective

    @classmethod
    def for_stream(cls, stream: object, mode: str = "auto", perspective: str = "jit") -> "Palette":
        if mode == "always":
            return cls(True, perspective)
        if mode == "never":
            return cls(False, perspective)
        if os.environ.get("NO_COLOR"):  # https://no-color.org: any non-empty value
            return cls(False, perspective)
        try:
            return cls(stream.isatty(), perspective)
        except (AttributeError, ValueError):
            return cls(False, perspective)

    def paint(self, style: str, value: str) -> str:
        if not self.enabled or not value:
            return value
        return "\033[%sm%s\033[0m" % (self.CODES.get(style, "0"), value)

    def verdict(self, word: str, shown: "str | None" = None) -> str:
        return self.paint(tone(word, self.perspective), word if shown is None else shown)


def tolerant_stdout() -> None:
    """Never fail on a character the terminal's encoding lacks (a report may hold any text)."""
    try:
        sys.stdout.reconfigure(errors="backslashreplace")
    except (AttributeError, ValueError):
        pass


def add_colour_argument(parser: "argparse.ArgumentParser") -> None:
    parser.add_argument("--colour", "--color", dest="colour", choices=("auto", "always", "never"),
                        default="auto", help="colour the output: auto (on a terminal, unless NO_COLOR "
                        "is set), always or never")


def write_text(path: "str | None", content: "str | Iterable[str]") -> None:
    """Write an output file ('-' or None: stdout); content is a str or an iterable of str."""
    from probe.report import output as _output

    if path in (None, "-"):
        _output.write_stdout(content)
    else:
        _output.write_file(path, content)


def append_text(path: str, content: str) -> None:
    """Append to a file (e.g. $GITHUB_STEP_SUMMARY, which other steps also write)."""
    try:
        with open(path, "a", encoding="utf-8") as stream:
            stream.write(content)
    except OSError as exc:
        raise InputError("%s: cannot append: %s" % (clean(path), exc.strerror or exc)) from None


def clean_tree(value: object) -> object:
    """Plain data with every string, keys included, passed through clean() (no length limit).

    JSON and YAML would carry a report's ESC, U+202E or U+2028 through, raw or as an
    escape that the next program decodes and prints: machine output gets the same
    visible escapes as the text output.
    """
    if isinstance(value, str):
        return clean(value, 0)
    if isinstance(value, dict):
        return {clean(k, 0) if isinstance(k, str) else k: clean_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_tree(v) for v in value]
    return value


def dump_machine(data: object, fmt: str) -> str:
    """YAML or JSON text of plain data (what diff and matrix print for machines), escaped."""
    data = clean_tree(data)
    if fmt == "json":
        import json

        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, sort_keys=False, default_flow_style=False, allow_unicode=True,
                     width=100)


# One function per outcome: (result, ' at STEP' or '') -> the words after the outcome.

def _dropped(result):
    return " (PROT_EXEC silently dropped)" if result.get("exec_dropped") else ""


def _allowed_detail(result, at):
    value = result.get("value")
    return ("returned %s" % text(value) if value is not None else "mapping made") + _dropped(result)


def _denied_detail(result, at):
    name = result.get("errno_name")
    number = result.get("errno")
    err = text(name) if name else ("errno %s" % text(number) if number is not None else "refused")
    if name and number is not None:
        err += " (%s)" % text(number)
    return err + at + _dropped(result)


def _signal_detail(result, at):
    return (text(result.get("signal")) or "signal %s" % text(result.get("signal_number"))) + at


def _wrong_result_detail(result, at):
    return "returned %s, expected %s%s" % (text(result.get("value")), text(result.get("expected")), at)


def _timeout_detail(result, at):
    return "no answer" + at + (": " + text(result.get("detail")) if result.get("detail") else "")


def _other_detail(result, at):
    return text(result.get("detail")) or (at.strip())


_DETAIL_BY_OUTCOME = {
    "allowed": _allowed_detail, "denied": _denied_detail, "crashed": _signal_detail, "killed": _signal_detail,
    "wrong_result": _wrong_result_detail, "timeout": _timeout_detail,
}


def _named_mechanism(item):
    """The mechanism an attribution item names with some certainty, else None."""
    if not isinstance(item, dict) or item.get("confidence") not in ("confirmed", "likely"):
        return None
    name = item.get("mechanism")
    return name if isinstance(name, str) and name != "unknown" else None


def _emulation_tag(doc):
    """The emulator (or the method) for a report not made natively, else None."""
    method = _get(doc, "host", "provenance", "method")
    if not isinstance(method, str) or method == "native":
        return None
    emulator = _get(doc, "host", "provenance", "emulator")
    return clean(emulator if isinstance(emulator, str) and emulator else method, 40)
