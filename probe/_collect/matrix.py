"""`memprobe matrix REPORT... | DIR`: hosts x capabilities, for many reports.

Rows are hosts labelled os/arch/kernel/host, with the confinement the probes
ran under in brackets ([mdwe], [seccomp], an emulator), so one machine probed
plain and confined gives distinct rows. Reports that still share a label:
if they ran as different users, the uid joins the label; otherwise they are
repeated runs of one host, and `--duplicates newest` (default) keeps the
newest by generated_at (ties: the later file name), saying so on stderr, while
`--duplicates all` keeps every one as 'label #2', 'label #3' (oldest first).

Files are read in worker processes (one per CPU), each holding one document
at a time and sending back only its row. A file that cannot be read, parsed
or validated is skipped with a warning (`--strict`: exit 1 instead).
"""

import csv
import html
import io
import os
import sys
import time

from probe import _output
from probe._collect import _render
from probe._collect._render import clean, tone
from probe._errors import EXIT_OK, InputError, UsageError

REPORT_SUFFIXES = (".yaml", ".yml", ".json")
_POOL_MIN_FILES = 64     # below this, starting workers costs more than it saves
_CHUNK = 32              # files per task sent to a worker
_MAX_WARNINGS = 20

ICONS = {"good": "\u2705", "bad": "\u274c", "odd": "\u26a0\ufe0f", "none": "\u2754"}
COLOURS = {"good": "#9be9a8", "bad": "#ff9492", "odd": "#ffd33d", "none": "#d0d7de", "missing": "#ffffff"}


def add_arguments(parser):
    parser.add_argument("paths", nargs="+", metavar="REPORT|DIR",
                        help="report files, or directories searched recursively for *.yaml, *.yml, *.json")
    parser.add_argument("--format", "-f", choices=("markdown", "csv", "json", "html"),
                        help="default: the --output file's extension (.md .csv .json .html), else markdown")
    parser.add_argument("--output", "-o", metavar="PATH", help="write here instead of stdout")
    parser.add_argument("--github-summary", action="store_true",
                        help="also append the Markdown table to $GITHUB_STEP_SUMMARY")
    parser.add_argument("--strict", action="store_true", help="fail (exit 1) on a bad file instead of skipping it")
    parser.add_argument("--duplicates", choices=("newest", "all"), default="newest",
                        help="several reports for one host: keep the newest (default) or all, numbered")
    parser.add_argument("--jobs", "-j", type=int, default=0, metavar="N",
                        help="worker processes (default: one per CPU; 1: read in this process)")
    parser.add_argument("--title", default="memprobe matrix", help="heading of the HTML page and step summary")


# --------------------------------------------------------------------------- reading

def find_reports(paths):
    """Files to read: each file as given, each directory walked (sorted, no symlinked dirs)."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                files.extend(os.path.join(root, n) for n in sorted(names)
                             if n.endswith(REPORT_SUFFIXES) and not n.startswith("."))
        else:
            files.append(path)
    return files


def read_row(path):
    """('ok', row) or ('bad', path, one-line reason) for one report file.

    A row holds only what the table needs, so a worker sends back a few hundred
    bytes per report.
    """
    from probe import _load

    try:
        data = _load.read_bytes(path)
        name = _load.display_name(path)
        doc = _load.parse_document(data, name, fmt="json" if path.endswith(".json") else None)
        problems = _load.report_problems(doc, full=True)
        if problems:
            raise InputError(_load.format_problem(name, data, problems[0], len(problems) - 1))
    except InputError as exc:
        return ("bad", path, str(exc))
    host = doc["host"]
    process = doc.get("process") or {}
    cells = {}
    for cap, entry in doc["summary"].items():
        state = entry.get("state")
        by = tuple(_render.blocked_by(doc, cap)) if state in ("blocked", "broken") else ()
        cells[cap] = (state, entry.get("text"), by)
    row = {
        "file": path, "os": host.get("os"), "arch": host.get("arch") or host.get("machine"),
        "kernel_release": host.get("kernel_release"), "hostname": host.get("hostname"),
        "base": _render.host_label(doc, tags=[]), "tags": _render.context_tags(doc),
        "euid": process.get("euid", process.get("uid")), "generated_at": doc.get("generated_at") or "",
        "cells": cells,
    }
    return ("ok", _compact(row))


_SHARED = {}
_SHARED_MAX = 200000


def _share(value):
    """One copy of each repeated string (states and summary lines repeat across thousands of
    reports): keeps the rows of a 10,000-report matrix small."""
    if value.__class__ is not str:
        return value
    found = _SHARED.get(value)
    if found is not None:
        return found
    if len(_SHARED) < _SHARED_MAX:
        _SHARED[value] = value
    return value


def _compact(row):
    share = _share
    for key in ("os", "arch", "kernel_release", "base"):
        row[key] = share(row[key])
    row["tags"] = [share(t) for t in row["tags"]]
    cells = tuple((share(cap), share(state), share(words), tuple(share(b) for b in by))
                  for cap, (state, words, by) in row["cells"].items())
    shared = _SHARED_CELLS.get(cells)
    if shared is None:
        shared = {cap: (state, words, by) for cap, state, words, by in cells}
        if len(_SHARED_CELLS) < _SHARED_MAX:
            _SHARED_CELLS[cells] = shared
    row["cells"] = shared  # read-only from here on: many hosts have the very same summary
    return row


_SHARED_CELLS = {}


def _read_chunk(paths):
    return [read_row(p) for p in paths]


def read_rows(files, jobs, progress=None):
    """Yield read_row() results, in parallel when it pays off."""
    if jobs > 1 and len(files) >= _POOL_MIN_FILES:
        import multiprocessing

        try:
            context = multiprocessing.get_context("fork")  # workers inherit the imported loader
        except ValueError:
            context = multiprocessing.get_context()
        chunks = [files[i:i + _CHUNK] for i in range(0, len(files), _CHUNK)]
        with context.Pool(min(jobs, len(chunks))) as pool:
            done = 0
            for results in pool.imap_unordered(_read_chunk, chunks):
                for result in results:
                    yield result
                done += len(results)
                if progress:
                    progress(done)
    else:
        for i, path in enumerate(files, 1):
            yield read_row(path)
            if progress and i % _CHUNK == 0:
                progress(i)


class _Progress:
    """'matrix: 1234/10000 reports' on stderr, only when stderr is a terminal."""

    def __init__(self, total, stream=None):
        self.total = total
        self.stream = stream or sys.stderr
        self.last = 0.0
        try:
            self.enabled = self.stream.isatty() and total >= _POOL_MIN_FILES
        except (AttributeError, ValueError):
            self.enabled = False

    def __call__(self, done):
        now = time.monotonic()
        if self.enabled and (now - self.last > 0.2 or done == self.total):
            self.last = now
            self.stream.write("\rmatrix: %d/%d reports" % (done, self.total))
            self.stream.flush()

    def finish(self):
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()


# --------------------------------------------------------------------------- the table

def build_matrix(rows, duplicates="newest"):
    """(rows with final labels, sorted; capabilities; notes about duplicates)."""
    notes = []
    groups = {}
    for row in rows:
        groups.setdefault(_label(row), []).append(row)
    # Same label, different users: the uid tells them apart.
    for label, members in list(groups.items()):
        if len(members) > 1 and len({str(m["euid"]) for m in members}) > 1:
            del groups[label]
            for member in members:
                member["tags"] = member["tags"] + ["uid %s" % clean(str(member["euid"]), 20)]
                groups.setdefault(_label(member), []).append(member)
    final = []
    for label, members in groups.items():
        members.sort(key=lambda r: (r["generated_at"], r["file"]))
        if len(members) == 1:
            members[0]["label"] = label
            final.append(members[0])
        elif duplicates == "newest":
            kept = members[-1]
            kept["label"] = label
            final.append(kept)
            notes.append("%d reports for %s; kept the newest, %s (--duplicates all keeps every one)"
                         % (len(members), label, clean(kept["file"], 0)))
        else:
            for i, member in enumerate(members, 1):
                member["label"] = label if i == 1 else "%s #%d" % (label, i)
                final.append(member)
    final.sort(key=lambda r: (str(r["os"]), str(r["arch"]), str(r["kernel_release"]), str(r["hostname"]),
                              r["label"]))
    seen = []
    seen_set = set()
    for row in final:
        for cap in row["cells"]:
            if cap not in seen_set:
                seen_set.add(cap)
                seen.append(cap)
    known = [c for c in _render.CAPABILITY_ORDER if c in seen_set]
    capabilities = known + sorted(c for c in seen if c not in _render.CAPABILITY_ORDER)
    return final, capabilities, notes


def _label(row):
    return row["base"] + (" [%s]" % ", ".join(row["tags"]) if row["tags"] else "")


# --------------------------------------------------------------------------- formats

def _md_escape(value):
    value = clean(value, 0)
    out = []
    for ch in value:
        if ch in "\\|*[]<>`~&":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def render_markdown(rows, capabilities, skipped=(), title=None):
    lines = []
    if title:
        lines += ["### %s" % _md_escape(title), ""]
    lines.append("| host | " + " | ".join("`%s`" % c for c in capabilities) + " |")
    lines.append("|---|" + "---|" * len(capabilities))
    for row in rows:
        cells = []
        for cap in capabilities:
            state, _, by = row["cells"].get(cap, _NO_CELL)
            cells.append(("%s %s%s" % (ICONS[tone(state)], _md_escape(state),
                                       " (%s)" % _md_escape(", ".join(by)) if by else "")) if state else "\u2013")
        lines.append("| %s | %s |" % (_md_escape(row["label"]), " | ".join(cells)))
    lines.append("")
    lines.append(_footer(rows, skipped))
    return "\n".join(lines) + "\n"


def _footer(rows, skipped):
    text = "%d host%s" % (len(rows), "" if len(rows) == 1 else "s")
    if skipped:
        text += "; %d bad file%s skipped" % (len(skipped), "" if len(skipped) == 1 else "s")
    return text + ". " + "\u2705 works / enforced, \u274c blocked / not enforced, \u26a0\ufe0f broken, \u2754 unknown."


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

    yield '{"capabilities": %s,\n "hosts": [' % dumps(capabilities)
    for i, row in enumerate(rows):
        host = {
            "label": row["label"], "os": row["os"], "arch": row["arch"], "kernel_release": row["kernel_release"],
            "hostname": row["hostname"], "context": row["tags"], "file": clean(row["file"], 0),
            "generated_at": row["generated_at"],
            "cells": {cap: _json_cell(row["cells"][cap]) for cap in capabilities if cap in row["cells"]},
        }
        yield "%s\n  %s" % ("," if i else "", dumps(host))
    yield "\n ],\n \"skipped\": %s,\n \"duplicates\": %s}\n" % (
        dumps([{"file": clean(path, 0), "error": reason} for path, reason in skipped]), dumps(list(notes)))


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


def render_html(rows, capabilities, skipped=(), title="memprobe matrix"):
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
                   % (esc(cap), "_<wbr>".join(esc(part) for part in cap.split("_"))))
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
                           % (tone(state), esc(clean(words or state, 0)), esc(clean(state, 40)),
                              '<br><small>%s</small>' % esc(clean(", ".join(by), 120)) if by else ""))
        out.append("</tr>")
    out.append("</tbody></table>")
    out.append('<p class="legend"><span class="good">works / enforced</span><span class="bad">blocked / '
               'not enforced</span><span class="odd">broken</span><span class="none">unknown</span></p>')
    if skipped:
        out.append('<ul class="skipped">')
        out.extend("<li>%s</li>" % esc(clean(reason, 300)) for _, reason in skipped[:100])
        if len(skipped) > 100:
            out.append("<li>... and %d more</li>" % (len(skipped) - 100))
        out.append("</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- command

def _jobs(requested):
    if requested and requested > 0:
        return requested
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def collect(paths, jobs=1, strict=False, duplicates="newest", warn=None):
    """(rows, capabilities, skipped, notes) for report paths and directories."""
    files = find_reports(paths)
    if not files:
        raise UsageError("no report files found in %s" % ", ".join(clean(p, 80) for p in paths))
    progress = _Progress(len(files))
    rows, skipped = [], []
    try:
        for result in read_rows(files, _jobs(jobs), progress):
            if result[0] == "ok":
                rows.append(_compact(result[1]))  # again: rows from workers arrive as fresh copies
            else:
                skipped.append((result[1], result[2]))
    finally:
        progress.finish()
    skipped.sort()
    if skipped and strict:
        raise InputError("%s (--strict; %d bad file%s)" % (skipped[0][1], len(skipped),
                                                            "" if len(skipped) == 1 else "s"))
    rows, capabilities, notes = build_matrix(rows, duplicates)
    return rows, capabilities, skipped, notes


def main(args):
    _render.tolerant_stdout()
    args.format = _output.choose_format(args.output, args.format, _output.MATRIX_FORMATS, "markdown")
    from probe import _load

    _load.max_bytes_default()   # a bad MEMPROBE_MAX_REPORT_BYTES: one error, not one per file
    if args.github_summary and not os.environ.get("GITHUB_STEP_SUMMARY"):
        raise UsageError("--github-summary: GITHUB_STEP_SUMMARY is not set (it is, inside a GitHub Actions step)")
    rows, capabilities, skipped, notes = collect(args.paths, args.jobs, args.strict, args.duplicates)
    warn = sys.stderr
    for _, reason in skipped[:_MAX_WARNINGS]:
        warn.write("memprobe: warning: skipped %s\n" % reason)
    if len(skipped) > _MAX_WARNINGS:
        warn.write("memprobe: warning: ... and %d more bad files skipped\n" % (len(skipped) - _MAX_WARNINGS))
    for note in notes[:_MAX_WARNINGS]:
        warn.write("memprobe: note: %s\n" % note)
    if len(notes) > _MAX_WARNINGS:
        warn.write("memprobe: note: ... and %d more hosts with several reports\n" % (len(notes) - _MAX_WARNINGS))
    if not rows:
        raise InputError("no usable report among %d file%s" % (len(skipped), "" if len(skipped) == 1 else "s"))
    if args.format == "markdown":
        text = render_markdown(rows, capabilities, skipped)
    elif args.format == "csv":
        text = render_csv(rows, capabilities, skipped)
    elif args.format == "json":
        text = iter_json(rows, capabilities, skipped, notes)
    else:
        text = render_html(rows, capabilities, skipped, args.title)
    _render.write_text(args.output, text)
    if args.github_summary:
        _render.append_text(os.environ["GITHUB_STEP_SUMMARY"],
                            render_markdown(rows, capabilities, skipped, title=args.title) + "\n")
    return EXIT_OK
