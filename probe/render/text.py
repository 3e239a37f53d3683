"""Helpers shared by the collector commands: labels, vocabularies, colour, output files."""

import os
import sys

from probe.errors import InputError
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


# Whoever hardens a host reads the same words the other way round: a strategy that
# works is an opening, one that is blocked (or whose probe was killed) is the defence holding.
PERSPECTIVES = ("jit", "hardening")
_HARDENING_TONE = {"works": "bad", "allowed": "bad", "blocked": "good", "denied": "good",
                   "crashed": "good", "killed": "good"}


def tone(word, perspective="jit"):
    if perspective == "hardening" and word in _HARDENING_TONE:
        return _HARDENING_TONE[word]
    return TONE.get(word, "none")


def legend(perspective="jit"):
    """What the good and bad colours stand for, in the user's point of view."""
    if perspective == "hardening":
        return "blocked / enforced", "works / not enforced"
    return "works / enforced", "blocked / not enforced"


def capability_probes(cap):
    """The ids of the probes that feed a capability (none for a name this memprobe does not know)."""
    from probe.attribution.summary import capability_probes as feeding

    return feeding().get(cap, ())


def capability_names():
    """The capabilities this memprobe knows: the engine's summary lines (the README lists the
    same names under *The report*)."""
    return frozenset(CAPABILITY_ORDER)


def blocked_by(doc, cap):
    """Mechanisms the report names (confirmed or likely) for the probes behind a capability."""
    probes = doc.get("probes") or {}
    names = []
    for pid in capability_probes(cap):
        result = probes.get(pid)
        if not isinstance(result, dict) or result.get("outcome") not in ("denied", "crashed", "killed"):
            continue
        for item in result.get("attribution") or ():
            if (isinstance(item, dict) and item.get("confidence") in ("confirmed", "likely")
                    and isinstance(item.get("mechanism"), str) and item["mechanism"] != "unknown"
                    and item["mechanism"] not in names):
                names.append(item["mechanism"])
    return names


def order_capabilities(names):
    """Known capabilities in the engine's order, then the rest as first seen."""
    known = [c for c in CAPABILITY_ORDER if c in names]
    extra = [c for c in names if c not in CAPABILITY_ORDER]
    return known + extra


def text(value, limit=200):
    """A document value as one safe line ('' for None)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return clean(value, limit)


def probe_detail(result):
    """errno/signal/step of a verdict in a few words."""
    outcome = result.get("outcome")
    step = result.get("step")
    at = " at %s" % text(step, 40) if step else ""
    dropped = " (PROT_EXEC silently dropped)" if result.get("exec_dropped") else ""
    if outcome == "allowed":
        value = result.get("value")
        return ("returned %s" % text(value) if value is not None else "mapping made") + dropped
    if outcome == "denied":
        name = result.get("errno_name")
        number = result.get("errno")
        err = text(name) if name else ("errno %s" % text(number) if number is not None else "refused")
        if name and number is not None:
            err += " (%s)" % text(number)
        return err + at + dropped
    if outcome in ("crashed", "killed"):
        return (text(result.get("signal")) or "signal %s" % text(result.get("signal_number"))) + at
    if outcome == "wrong_result":
        return "returned %s, expected %s%s" % (text(result.get("value")), text(result.get("expected")), at)
    if outcome == "timeout":
        return ("no answer" + at + (": " + text(result.get("detail")) if result.get("detail") else ""))
    return text(result.get("detail")) or (at.strip())


def _get(mapping, *keys):
    for key in keys:
        if not isinstance(mapping, dict):
            return None
        mapping = mapping.get(key)
    return mapping


def context_tags(doc):
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
    method = _get(doc, "host", "provenance", "method")
    if isinstance(method, str) and method != "native":
        emulator = _get(doc, "host", "provenance", "emulator")
        tags.append(clean(emulator if isinstance(emulator, str) and emulator else method, 40))
    return tags


def host_label(doc, tags=None):
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

    def __init__(self, enabled, perspective="jit"):
        self.enabled = enabled
        self.perspective = perspective

    @classmethod
    def for_stream(cls, stream, mode="auto", perspective="jit"):
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

    def paint(self, style, value):
        if not self.enabled or not value:
            return value
        return "\033[%sm%s\033[0m" % (self.CODES.get(style, "0"), value)

    def verdict(self, word, shown=None):
        return self.paint(tone(word, self.perspective), word if shown is None else shown)


def tolerant_stdout():
    """Never fail on a character the terminal's encoding lacks (a report may hold any text)."""
    try:
        sys.stdout.reconfigure(errors="backslashreplace")
    except (AttributeError, ValueError):
        pass


def add_colour_argument(parser):
    parser.add_argument("--colour", "--color", dest="colour", choices=("auto", "always", "never"),
                        default="auto", help="colour the output: auto (on a terminal, unless NO_COLOR "
                        "is set), always or never")


def add_perspective_argument(parser):
    parser.add_argument("--perspective", choices=PERSPECTIVES, default="jit",
                        help="whose point of view the colours take: jit (default: a strategy that "
                        "works is green) or hardening (a strategy that is blocked is green)")


def write_text(path, content):
    """Write an output file ('-' or None: stdout); content is a str or an iterable of str."""
    from probe.report import output as _output

    if path in (None, "-"):
        _output.write_stdout(content)
    else:
        _output.write_file(path, content)


def append_text(path, content):
    """Append to a file (e.g. $GITHUB_STEP_SUMMARY, which other steps also write)."""
    try:
        with open(path, "a", encoding="utf-8") as stream:
            stream.write(content)
    except OSError as exc:
        raise InputError("%s: cannot append: %s" % (clean(path), exc.strerror or exc)) from None


def clean_tree(value):
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


def dump_machine(data, fmt):
    """YAML or JSON text of plain data (what diff and matrix print for machines), escaped."""
    data = clean_tree(data)
    if fmt == "json":
        import json

        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, sort_keys=False, default_flow_style=False, allow_unicode=True,
                     width=100)
