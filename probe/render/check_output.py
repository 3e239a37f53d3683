"""What `memprobe check` prints: text, JSON, a Markdown step summary, GitHub
workflow-command annotations and JUnit test cases.

Every word from the expectations file or the report has passed through clean()
(describe() and the found text do it); each format then adds its own escaping.
"""

import json

from probe.render import text as _render
from probe.vocab import FAILS, HOLDS, UNDECIDED
from probe.render.text import clean
from probe.errors import EXIT_DIFFERENT, EXIT_OK

OUTCOME_OF_EXIT = {EXIT_OK: HOLDS, EXIT_DIFFERENT: FAILS}
_MARKS = {HOLDS: ("good", "ok"), FAILS: ("bad", "FAIL"), UNDECIDED: ("odd", "UNDECIDED")}


def outcome(status: int) -> str:
    return OUTCOME_OF_EXIT.get(status, UNDECIDED)


def counts_line(results: list) -> str:
    counts = _counts(results)
    return "%d expectation%s: %d hold, %d fail, %d undecided" % (
        len(results), "" if len(results) == 1 else "s", counts[HOLDS], counts[FAILS], counts[UNDECIDED])


def _counts(results):
    counts = {HOLDS: 0, FAILS: 0, UNDECIDED: 0}
    for _, verdict, _ in results:
        counts[verdict] += 1
    return counts


def render(results: list, report: dict, name: str, palette: object, quiet: bool = False,
           sections: tuple = ()) -> str:
    """The terminal text: the host, one line per expectation, the counts."""
    p = palette
    out = []
    if not quiet:
        out.append("%s  %s" % (p.paint("bold", _render.host_label(report)), p.paint("dim", "(%s)" % clean(name))))
        for section, applies in sections:
            if not applies:
                out.append(p.paint("dim", "not applied: %s" % section.describe()))
    for exp, verdict, found in results:
        if quiet and verdict == HOLDS:
            continue
        style, word = _marks(verdict)
        line = "%s %s" % (p.paint(style, word.ljust(9)), exp.describe())
        line += p.paint("dim", "  (found %s)" % found) if verdict == HOLDS else "  (found %s)" % _tinted(found, p)
        out.append(line)
    if not results:
        out.append(p.paint("odd", "UNDECIDED") + " no expectation applies to this host")
    out.append(counts_line(results))
    return "\n".join(out) + "\n"


def _tinted(found, p):
    """What was found, its leading verdict word coloured from the user's point of view."""
    word, sep, rest = found.partition(" ")
    return (p.verdict(word) if word in _render.TONE else word) + sep + rest


def _marks(verdict):
    return _MARKS[verdict]


def render_json(results: list, report: dict, name: str, status: int, expectations: list,
                sections: tuple = ()) -> str:
    """The machine-readable result: outcome, exit code and one entry per expectation."""
    line_of = getattr(expectations, "line", None)
    doc = {
        "outcome": outcome(status),
        "exit_code": status,
        "host": _render.host_label(report),
        "report": clean(name),
        "expect": clean(getattr(expectations, "name", "<expectations>")),
        "counts": _counts(results),
        "expectations": [{
            "expected": exp.describe(),
            "kind": exp.kind,
            "path": exp.path,
            "line": line_of(exp.path) if line_of else None,
            "verdict": verdict,
            "found": found,
        } for exp, verdict, found in results],
        "sections": [{"path": section.path, "when": _render.clean_tree(section.when), "applied": applies}
                     for section, applies in sections],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def render_markdown(results: list, report: dict, status: int) -> str:
    """A step summary: a heading with the outcome, a table of expectations, the counts."""
    from probe.render.table import ICONS, _md_escape

    icons = {HOLDS: ICONS["good"], FAILS: ICONS["bad"], UNDECIDED: ICONS["odd"]}
    lines = ["### memprobe check: %s %s" % (icons[outcome(status)], _md_escape(_render.host_label(report))), ""]
    if results:
        lines += ["| | expectation | found |", "|---|---|---|"]
        lines += ["| %s %s | %s | %s |" % (icons[verdict], verdict, _md_escape(exp.describe()), _md_escape(found))
                  for exp, verdict, found in results]
    else:
        lines.append("No expectation applies to this host.")
    lines += ["", counts_line(results), ""]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- GitHub annotations

def escape_data(value: str) -> str:
    """A workflow command's message: %, CR and LF escaped (GitHub's rules)."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    """A workflow command's property value: as a message, and also ':' and ','."""
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def annotations(results: list, expectations: list) -> str:
    """`::error` for each failed expectation, `::warning` for each undecided one,
    pointing at the expectation's file and line."""
    name = getattr(expectations, "name", None)
    line_of = getattr(expectations, "line", None)
    out = []
    for exp, verdict, found in results:
        if verdict == HOLDS:
            continue
        props = []
        if name:
            props.append("file=" + escape_property(name))
            line = line_of(exp.path) if line_of else None
            if line:
                props.append("line=%d" % line)
        message = "memprobe check: %s %s, found %s" % (
            "expected" if verdict == FAILS else "could not decide", exp.describe(), found)
        command = "error" if verdict == FAILS else "warning"
        if props:
            command += " " + ",".join(props)
        out.append("::%s::%s\n" % (command, escape_data(message)))
    return "".join(out)


def junit_cases(results: list, report: dict) -> "list[dict]":
    from probe.render.junit import classname_for

    classname = classname_for("memprobe.check", report)
    status = {HOLDS: "passed", FAILS: "failure", UNDECIDED: "skipped"}
    cases = []
    for exp, verdict, found in results:
        cases.append({"classname": classname, "name": exp.describe(), "status": status[verdict],
                      "message": "%s: expected %s, found %s" % (verdict, exp.describe(), found),
                      "output": "found %s" % found})
    return cases
