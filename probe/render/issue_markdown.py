"""A report as Markdown to paste into a bug tracker: the host, the capability table, the
recommendation, and the whole (redacted) report folded away in a <details> block.

Every string comes from a report, which may be hostile: table cells pass through the
matrix's Markdown escaping, and the report's text sits in a code fence longer than any
run of backticks inside it, so nothing in it can close the fence or open HTML.
"""

import re

from probe.render import text as _render
from probe.render.table import ICONS, _md_escape


def render(doc: dict, report_text: str, fmt: str = "yaml", perspective: str = "jit") -> str:
    """The Markdown; doc is the redacted report and report_text its serialised form."""
    from probe.commands.show import _host_line   # the host line exactly as `show` words it
    out = ["**memprobe** `%s`" % _code(_render.host_label(doc)), "",
           _md_escape(_host_line(doc.get("host") if isinstance(doc.get("host"), dict) else {})), ""]
    out += _capability_table(doc.get("summary"), perspective)
    recommendation = doc.get("recommendation")
    if isinstance(recommendation, str) and recommendation:
        out += ["**Recommendation:** %s" % _md_escape(_render.text(recommendation, 600)), ""]
    fence = "`" * max(3, _longest_backtick_run(report_text) + 1)
    out += ["<details><summary>Full report (redacted, %s)</summary>" % fmt.upper(), "",
            fence + fmt, report_text.rstrip("\n"), fence, "", "</details>"]
    return "\n".join(out) + "\n"


def _capability_table(summary, perspective):
    if not isinstance(summary, dict) or not summary:
        return []
    lines = ["| capability | state | what it means |", "|---|---|---|"]
    for cap in _render.order_capabilities(list(summary)):
        entry = summary[cap] if isinstance(summary[cap], dict) else {}
        state = _render.text(entry.get("state"), 20)
        lines.append("| `%s` | %s %s | %s |" % (_code(cap), ICONS[_render.tone(state, perspective)],
                                                 _md_escape(state), _md_escape(_render.text(entry.get("text")))))
    return lines + [""]


def _code(value):
    """Text for inside `...`: a backtick would end the span, a pipe the table cell."""
    return _render.text(value, 120).replace("`", "'").replace("|", "\\|")


def _longest_backtick_run(text):
    return max((len(run) for run in re.findall("`+", text)), default=0)
