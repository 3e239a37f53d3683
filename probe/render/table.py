"""The formats of `memprobe matrix`: Markdown, CSV, JSON and a self-contained HTML page.

Every string in a row comes from an untrusted report: each passes through clean()
(control, bidi and line-separator characters become visible escapes) and then the
format's own escaping.
"""

import csv
import html
import io

from probe.render.text import clean, clean_tree, legend, tone

ICONS = {"good": "\u2705", "bad": "\u274c", "odd": "\u26a0\ufe0f", "none": "\u2754"}
COLOURS = {"good": "#9be9a8", "bad": "#ff9492", "odd": "#ffd33d", "none": "#d0d7de", "missing": "#ffffff"}



def _md_escape(value):
    value = clean(value, 0)
    out = []
    for ch in value:
        if ch in "\\|*[]<>`~&":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def render_markdown(rows, capabilities, skipped=(), title=None, perspective="jit"):
    lines = []
    if title:
        lines += ["### %s" % _md_escape(title), ""]
    lines.append("| host | " + " | ".join("`%s`" % clean(c, 0) for c in capabilities) + " |")
    lines.append("|---|" + "---|" * len(capabilities))
    for row in rows:
        cells = []
        for cap in capabilities:
            state, _, by = row["cells"].get(cap, _NO_CELL)
            cells.append(("%s %s%s" % (ICONS[tone(state, perspective)], _md_escape(state),
                                       " (%s)" % _md_escape(", ".join(by)) if by else "")) if state else "\u2013")
        lines.append("| %s | %s |" % (_md_escape(row["label"]), " | ".join(cells)))
    lines.append("")
    lines.append(_footer(rows, skipped, perspective))
    return "\n".join(lines) + "\n"


def _footer(rows, skipped, perspective="jit"):
    text = "%d host%s" % (len(rows), "" if len(rows) == 1 else "s")
    if skipped:
        text += "; %d bad file%s skipped" % (len(skipped), "" if len(skipped) == 1 else "s")
    good, bad = legend(perspective)
    return text + ". " + "\u2705 %s, \u274c %s, \u26a0\ufe0f broken, \u2754 unknown." % (good, bad)


_NO_CELL = (None, None, ())


def _state_by(cell):
    state, _, by = cell
    return "%s (%s)" % (state, ", ".join(by)) if state and by else state


def _csv_cell(value):
    value = "" if value is None else clean(value, 0)
    if value[:1] in ("=", "+", "-", "@", "\t", "\r"):  # no formulas when opened in a spreadsheet
        value = "'" + value
    return value


def render_csv(rows, capabilities, skipped=()):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["host", "os", "arch", "kernel_release", "hostname", "context", "file", "generated_at"]
                    + capabilities)
    for row in rows:
        writer.writerow([_csv_cell(row["label"]), _csv_cell(row["os"]), _csv_cell(row["arch"]),
                         _csv_cell(row["kernel_release"]), _csv_cell(row["hostname"]),
                         _csv_cell(" ".join(row["tags"])), _csv_cell(row["file"]), _csv_cell(row["generated_at"])]
                        + [_csv_cell(_state_by(row["cells"].get(cap, _NO_CELL))) for cap in capabilities])
    return out.getvalue()


def render_json(rows, capabilities, skipped=(), notes=()):
    """JSON text, one host per line: readable, and built without one object for the whole
    table (json's indenting encoder would hold millions of fragments for 10,000 hosts)."""
    return "".join(iter_json(rows, capabilities, skipped, notes))


def _json_cell(cell):
    state, words, by = cell
    out = {"state": state, "text": words}
    if by:
        out["blocked_by"] = list(by)
    return out


def iter_json(rows, capabilities, skipped=(), notes=()):
    import json

    def dumps(value):
        return json.dumps(value, ensure_ascii=False)

    yield '{"capabilities": %s,\n "hosts": [' % dumps(clean_tree(capabilities))
    for i, row in enumerate(rows):
        host = {
            "label": row["label"], "os": row["os"], "arch": row["arch"], "kernel_release": row["kernel_release"],
            "hostname": row["hostname"], "context": row["tags"], "file": row["file"],
            "generated_at": row["generated_at"],
            "cells": {cap: _json_cell(row["cells"][cap]) for cap in capabilities if cap in row["cells"]},
        }
        yield "%s\n  %s" % ("," if i else "", dumps(clean_tree(host)))
    yield "\n ],\n \"skipped\": %s,\n \"duplicates\": %s}\n" % (
        dumps([{"file": clean(path, 0), "error": clean(reason, 0)} for path, reason in skipped]),
        dumps(clean_tree(list(notes))))


_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em;color:#1f2328;background:#fff}
h1{font-size:1.4em;margin:0 0 .3em}
p.meta{color:#59636e;margin:0 0 1em}
table{border-collapse:collapse}
th,td{border:1px solid #afb8c1;padding:.3em .6em;text-align:center;white-space:nowrap}
thead th{position:sticky;top:0;background:#f6f8fa;font-weight:600;white-space:normal;max-width:7em;
  font-size:.85em;vertical-align:bottom}
tbody th{text-align:left;font-weight:500;background:#f6f8fa;position:sticky;left:0}
td.good{background:%(good)s}td.bad{background:%(bad)s}td.odd{background:%(odd)s}
td.none{background:%(none)s}td.missing{background:%(missing)s;color:#8c959f}
tbody tr:hover th{background:#eaeef2}
.legend span{display:inline-block;padding:.1em .6em;margin-right:.4em;border:1px solid #afb8c1}
.legend .good{background:%(good)s}.legend .bad{background:%(bad)s}.legend .odd{background:%(odd)s}
.legend .none{background:%(none)s}
ul.skipped{color:#9a6700}
""" % COLOURS


def render_html(rows, capabilities, skipped=(), title="memprobe matrix", perspective="jit"):
    esc = html.escape
    out = ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           "<title>%s</title>" % esc(clean(title, 200)), "<style>%s</style></head><body>" % _CSS,
           "<h1>%s</h1>" % esc(clean(title, 200)),
           '<p class="meta">%d host%s, %d capabilit%s%s. Hover a cell for the report\'s own words.</p>'
           % (len(rows), "" if len(rows) == 1 else "s", len(capabilities), "y" if len(capabilities) == 1 else "ies",
              "; %d bad file%s skipped" % (len(skipped), "" if len(skipped) == 1 else "s") if skipped else ""),
           '<table id="matrix"><thead><tr><th scope="col">host</th>']
    for cap in capabilities:
        out.append('<th scope="col" data-capability="%s">%s</th>'
                   % (esc(clean(cap, 0)), "_<wbr>".join(esc(clean(part, 0)) for part in cap.split("_"))))
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append('<tr><th scope="row" title="%s">%s</th>'
                   % (esc(clean("%s, generated %s" % (row["file"], row["generated_at"]), 0)),
                      esc(clean(row["label"], 0))))
        for cap in capabilities:
            state, words, by = row["cells"].get(cap, _NO_CELL)
            if state is None:
                out.append('<td class="missing">\u2013</td>')
            else:
                out.append('<td class="%s" title="%s">%s%s</td>'
                           % (tone(state, perspective), esc(clean(words or state, 0)), esc(clean(state, 40)),
                              '<br><small>%s</small>' % esc(clean(", ".join(by), 120)) if by else ""))
        out.append("</tr>")
    out.append("</tbody></table>")
    out.append('<p class="legend"><span class="good">%s</span><span class="bad">%s</span>'
               '<span class="odd">broken</span><span class="none">unknown</span></p>' % legend(perspective))
    if skipped:
        out.append('<ul class="skipped">')
        out.extend("<li>%s</li>" % esc(clean(reason, 300)) for _, reason in skipped[:100])
        if len(skipped) > 100:
            out.append("<li>... and %d more</li>" % (len(skipped) - 100))
        out.append("</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


