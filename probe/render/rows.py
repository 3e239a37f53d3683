"""One report file -> one row of `memprobe matrix`: only what the table needs.

A worker process sends back a few hundred bytes per report, and repeated strings
and whole summaries are shared, so a 10,000-report matrix stays small.
"""

from probe.render import text as _render
from probe.render.text import clean
from probe.errors import InputError

_MAX_DROPPED_SHOWN = 5   # unknown capability names quoted per warning
# A redacted report keeps uid 0 and writes null for any other uid: null there means "not root".
NON_ROOT = "non-root"


def user_of(doc: dict) -> object:
    """The report's effective uid; NON_ROOT for a redacted report's null."""
    process = doc.get("process") or {}
    euid = process.get("euid", process.get("uid"))
    if euid is None and doc.get("redacted") is not None:
        return NON_ROOT
    return euid


def user_tag(euid: object) -> str:
    """The label tag that tells two runs of one host by different users apart."""
    return NON_ROOT if euid == NON_ROOT else "uid %s" % clean(str(euid), 20)


def read_row(path: str, regular_only: bool = False) -> tuple:
    """('ok', row) or ('bad', path, one-line reason) for one report file.

    A row holds only what the table needs, so a worker sends back a few hundred
    bytes per report. regular_only: refuse a FIFO or device without reading it.
    """
    try:
        doc = _read_report(path, regular_only)
    except InputError as exc:
        return ("bad", path, str(exc))
    host = doc["host"]
    cells, dropped = _cells(doc)
    row = {
        "file": path, "os": host.get("os"), "arch": host.get("arch") or host.get("machine"),
        "kernel_release": host.get("kernel_release"), "hostname": host.get("hostname"),
        "base": _render.host_label(doc, tags=[]), "tags": _render.context_tags(doc),
        "euid": user_of(doc), "generated_at": doc.get("generated_at") or "",
        "cells": cells,
        # unknown names, a few of them: what a warning needs, never a column
        "dropped": (len(dropped), tuple(clean(c, 40) for c in dropped[:_MAX_DROPPED_SHOWN])) if dropped else None,
    }
    return ("ok", _compact(row))


def _read_report(path, regular_only):
    """The parsed and validated report; InputError with the file's first problem."""
    from probe.report import load as _load

    data = _load.read_bytes(path, regular_only=regular_only)
    name = _load.display_name(path)
    doc = _load.parse_document(data, name, fmt="json" if path.endswith(".json") else None)
    problems = _load.report_problems(doc, full=True)
    if problems:
        raise InputError(_load.format_problem(name, data, problems[0], len(problems) - 1))
    return doc


def _cells(doc):
    """({capability: (state, text, blocked by)} for the known capabilities, [unknown names])."""
    cells = {}
    known = _render.capability_names()
    dropped = [cap for cap in doc["summary"] if cap not in known]
    for cap, entry in doc["summary"].items():
        if cap not in known:
            continue
        state = entry.get("state")
        by = tuple(_render.blocked_by(doc, cap)) if state in ("blocked", "broken") else ()
        cells[cap] = (state, entry.get("text"), by)
    return cells, dropped


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


# --------------------------------------------------------------------------- the table

def build_matrix(rows: "list[dict]", duplicates: str = "newest") -> "tuple[list[dict], list[str], list[str]]":
    """(rows with final labels, sorted; capabilities; notes about duplicates)."""
    notes = []
    final = []
    for label, members in _rows_by_label(rows).items():
        final.extend(_keep(label, members, duplicates, notes))
    final.sort(key=lambda r: (str(r["os"]), str(r["arch"]), str(r["kernel_release"]), str(r["hostname"]),
                              r["label"]))
    return final, _columns(final), notes


def _label(row):
    return row["base"] + (" [%s]" % ", ".join(row["tags"]) if row["tags"] else "")


def _rows_by_label(rows):
    """{label: rows}; rows of one label run by different users get the uid in their label."""
    groups = {}
    for row in rows:
        groups.setdefault(_label(row), []).append(row)
    for label, members in list(groups.items()):
        if len(members) > 1 and len({str(m["euid"]) for m in members}) > 1:
            del groups[label]
            for member in members:
                member["tags"] = member["tags"] + [user_tag(member["euid"])]
                groups.setdefault(_label(member), []).append(member)
    return groups


def _keep(label, members, duplicates, notes):
    """The rows kept for one label: the newest (with a note), or all of them numbered oldest first."""
    members.sort(key=lambda r: (r["generated_at"], r["file"]))
    if len(members) == 1:
        members[0]["label"] = label
        return [members[0]]
    if duplicates == "newest":
        kept = members[-1]
        kept["label"] = label
        notes.append("%d reports for %s; kept the newest, %s (--duplicates all keeps every one)"
                     % (len(members), label, clean(kept["file"], 0)))
        return [kept]
    for i, member in enumerate(members, 1):
        member["label"] = label if i == 1 else "%s #%d" % (label, i)
    return members


def _columns(rows):
    """The capabilities of the rows: known ones in the engine's order, then the rest sorted."""
    seen = []
    seen_set = set()
    for row in rows:
        for cap in row["cells"]:
            if cap not in seen_set:
                seen_set.add(cap)
                seen.append(cap)
    known = [c for c in _render.CAPABILITY_ORDER if c in seen_set]
    return known + sorted(c for c in seen if c not in _render.CAPABILITY_ORDER)
