"""memprobe matrix: formats, duplicate hosts, bad files, parallel reading, and the HTML page
rendered by a real headless Chromium."""

import csv
import html.parser
import io
import json
import os
import struct
import subprocess
import zlib

import pytest

from probe.commands import matrix

from helpers.collect_fixtures import (HOSTILE, chromium, cli, real, variant, with_attribution, write,  # noqa: F401
                                      write_bytes)


@pytest.fixture
def fleet(real, tmp_path):
    """Real reports of this host (plain, MDWE, seccomp) plus other hosts made from them."""
    plain = real.doc("plain")
    d = tmp_path / "reports"
    (d / "ci-artifact-1").mkdir(parents=True)
    write(d, "plain.yaml", plain)
    write(d / "ci-artifact-1", "mdwe.json", real.doc("mdwe"))
    write(d, "seccomp.yaml", real.doc("seccomp"))
    write(d, "arm.yaml", variant(plain, hostname="pi", arch="aarch64", kernel="6.1.0-rpi",
                                 emulator="qemu-aarch64 8.2.2"))
    write(d, "odd.yaml", variant(plain, hostname="odd", outcomes={"map_rx": ("wrong_result",)}))
    (d / "notes.txt").write_text("not a report")
    return d


def mechanisms(doc, pid):
    """What the report itself blames (confirmed or likely) for a probe's failure."""
    out = []
    for item in doc["probes"][pid].get("attribution") or ():
        if item["confidence"] in ("confirmed", "likely") and item["mechanism"] not in out + ["unknown"]:
            out.append(item["mechanism"])
    return out


def run_matrix(*args):
    status, out, err = cli("matrix", *args)
    return status, out, err


def test_markdown_of_real_reports(fleet, real):
    status, out, err = run_matrix(fleet)
    assert status == 0, err
    lines = out.splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    caps = list(real.doc("plain")["summary"])
    assert header == ["host"] + ["`%s`" % c for c in caps]
    assert lines[1] == "|---|" + "---|" * len(caps)
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:7]]
    labels = [r[0] for r in rows]
    host = real.doc("plain")["host"]
    base = "%s/%s/%s/%s" % (host["os"], host["arch"], host["kernel_release"], host["hostname"])
    base_md = base  # '_' needs no escape in a GFM table; '[' and ']' do
    assert base_md in labels and base_md + " \\[mdwe\\]" in labels and base_md + " \\[seccomp\\]" in labels
    assert "linux/aarch64/6.1.0-rpi/pi \\[qemu-aarch64 8.2.2\\]" in labels
    mdwe_row = rows[labels.index(base_md + " \\[mdwe\\]")]
    wx = header.index("`wx_flip`")
    by = mechanisms(real.doc("mdwe"), "flip_rw_rx")
    assert mdwe_row[wx] == "\u274c blocked" + (" (%s)" % ", ".join(by) if by else "")
    assert rows[labels.index(base_md)][wx] == "\u2705 works"
    odd_row = next(r for r in rows if r[0].endswith("/odd"))
    assert odd_row[header.index("`rx_mapping`")] == "\u26a0\ufe0f broken"
    assert lines[-1].startswith("5 hosts.")


def test_csv_and_json(fleet, real):
    status, out, _ = run_matrix(fleet, "--format", "csv")
    assert status == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 5
    by_context = {r["context"]: r for r in rows if r["hostname"] == real.doc("plain")["host"]["hostname"]}
    assert set(by_context) == {"", "mdwe", "seccomp"}
    for name, row in (("plain", by_context[""]), ("mdwe", by_context["mdwe"]), ("seccomp", by_context["seccomp"])):
        for cap, entry in real.doc(name)["summary"].items():
            assert row[cap].split(" (")[0] == entry["state"], (name, cap)
        by = mechanisms(real.doc(name), "flip_rw_rx")
        assert row["wx_flip"] == real.doc(name)["summary"]["wx_flip"]["state"] + (
            " (%s)" % ", ".join(by) if by else "")
    status, out, _ = run_matrix(fleet, "--format", "json")
    data = json.loads(out)
    assert data["capabilities"] == list(real.doc("plain")["summary"])
    assert len(data["hosts"]) == 5 and data["skipped"] == [] and data["duplicates"] == []
    mdwe = next(h for h in data["hosts"] if h["context"] == ["mdwe"])
    expected = {"state": "blocked", "text": real.doc("mdwe")["summary"]["wx_flip"]["text"]}
    if mechanisms(real.doc("mdwe"), "flip_rw_rx"):
        expected["blocked_by"] = mechanisms(real.doc("mdwe"), "flip_rw_rx")
    assert mdwe["cells"]["wx_flip"] == expected


def test_bad_files_are_skipped_with_a_warning_or_fail_with_strict(fleet):
    write_bytes(fleet, "evil.yaml", HOSTILE["python-object"])
    write_bytes(fleet, "laughs.yml", HOSTILE["billion-laughs"])
    status, out, err = run_matrix(fleet)
    assert status == 0
    warnings = err.splitlines()
    assert len(warnings) == 2
    assert all(w.startswith("memprobe: warning: skipped %s" % fleet) for w in warnings)
    assert "tag !!python/object/apply:os.system is not allowed" in err and "aliases" in err
    assert out.splitlines()[-1].startswith("5 hosts; 2 bad files skipped.")
    status, out, err = run_matrix(fleet, "--strict")
    assert (status, out) == (1, "")
    assert err.count("\n") == 1 and "(--strict; 2 bad files)" in err


def test_nothing_usable_is_an_error(tmp_path):
    write_bytes(tmp_path, "a.yaml", HOSTILE["deep-flow"])
    status, out, err = run_matrix(tmp_path)
    assert status == 1 and "no usable report among 1 file" in err
    status, _, err = run_matrix(tmp_path / "empty-dir-that-does-not-exist")
    assert status == 1


def test_duplicate_hosts_newest_or_all(real, tmp_path):
    plain = real.doc("plain")
    write(tmp_path, "a.yaml", variant(plain, hostname="web1", generated_at="2026-01-01T00:00:00Z"))
    write(tmp_path, "b.yaml", variant(plain, hostname="web1", generated_at="2026-03-01T00:00:00Z",
                                      outcomes={"flip_rw_rx": ("denied", "EPERM")}))
    write(tmp_path, "c.yaml", variant(plain, hostname="web1", generated_at="2026-02-01T00:00:00Z"))
    # the same host as another user: told apart by uid, not dropped
    write(tmp_path, "d.yaml", variant(plain, hostname="db1", euid=0))
    write(tmp_path, "e.yaml", variant(plain, hostname="db1", euid=65534))

    status, out, err = run_matrix(tmp_path, "-f", "json")
    assert status == 0
    hosts = json.loads(out)["hosts"]
    web = [h for h in hosts if h["hostname"] == "web1"]
    assert len(web) == 1 and web[0]["file"].endswith("b.yaml")  # the newest
    assert web[0]["cells"]["wx_flip"]["state"] == "blocked"
    assert "3 reports for" in err and "kept the newest" in err and "b.yaml" in err
    db = sorted(h["label"] for h in hosts if h["hostname"] == "db1")
    assert db[0].endswith("db1 [uid 0]") and db[1].endswith("db1 [uid 65534]")

    status, out, err = run_matrix(tmp_path, "-f", "json", "--duplicates", "all")
    web = [h for h in json.loads(out)["hosts"] if h["hostname"] == "web1"]
    assert [h["file"][-6:] for h in web] == ["a.yaml", "c.yaml", "b.yaml"]  # oldest first
    assert [h["label"][-3:] for h in web] == ["eb1", " #2", " #3"]
    assert err == ""


def test_output_file_and_github_summary(fleet, tmp_path):
    out = tmp_path / "m.html"
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    status, stdout, err = cli("matrix", fleet, "-f", "html", "-o", out, "--github-summary",
                              env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert status == 0 and stdout == "", err
    assert out.read_text().startswith("<!DOCTYPE html>")
    text = summary.read_text()
    assert text.startswith("earlier step\n### memprobe matrix\n\n| host |")
    status, _, err = cli("matrix", fleet, "--github-summary", env={"GITHUB_STEP_SUMMARY": ""})
    assert status == 1 and "GITHUB_STEP_SUMMARY is not set" in err


def test_parallel_and_serial_reading_agree(real, tmp_path):
    plain = real.doc("plain")
    states = [("allowed",), ("denied", "EACCES"), ("denied", "EPERM"), ("crashed", "SIGSEGV")]
    for i in range(matrix._POOL_MIN_FILES + 10):
        write(tmp_path, "r%03d.yaml" % i, variant(plain, hostname="h%03d" % i,
                                                   outcomes={"flip_rw_rx": states[i % 4]}))
    write_bytes(tmp_path, "zz-bad.yaml", HOSTILE["dup-key"])
    one = matrix.collect([str(tmp_path)], jobs=1)
    two = matrix.collect([str(tmp_path)], jobs=2)
    assert one == two
    rows, caps, skipped, notes = two
    assert len(rows) == matrix._POOL_MIN_FILES + 10 and len(skipped) == 1 and notes == []
    assert [r["hostname"] for r in rows] == sorted(r["hostname"] for r in rows)


def test_matrix_names_blocking_mechanisms_when_attributed(real, tmp_path):
    doc = with_attribution(real.doc("mdwe"))
    rows, caps = [matrix._compact(dict(matrix_row_of(doc), file="x"))], list(doc["summary"])
    rows[0]["label"] = "x"
    md = matrix.render_markdown(rows, caps)
    assert "\u274c blocked (mdwe" in md


def matrix_row_of(doc):
    from probe.render import text as _render

    cells = {cap: (e["state"], e["text"], tuple(_render.blocked_by(doc, cap)) if e["state"] == "blocked" else ())
             for cap, e in doc["summary"].items()}
    return {"os": "linux", "arch": "x86_64", "kernel_release": "k", "hostname": "h", "base": "b", "tags": [],
            "euid": 0, "generated_at": "", "cells": cells}


def test_hostile_labels_are_escaped_in_every_format(real, tmp_path):
    doc = variant(real.doc("plain"), hostname="<script>alert(1)</script>|=cmd|*x*")
    write(tmp_path, "evil.yaml", doc)
    _, md, _ = run_matrix(tmp_path)
    assert "\\<script\\>alert(1)\\</script\\>\\|=cmd\\|\\*x\\*" in md
    _, page, _ = run_matrix(tmp_path, "-f", "html")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    doc = variant(real.doc("plain"), hostname="=HYPERLINK(1)")
    write(tmp_path, "evil.yaml", doc)
    _, out, _ = run_matrix(tmp_path, "-f", "csv")
    row = list(csv.DictReader(io.StringIO(out)))[0]
    assert row["hostname"] == "'=HYPERLINK(1)"


# --------------------------------------------------------------------------- real browser

def _png_pixels(path):
    """RGB(A) rows of a non-interlaced 8-bit PNG (what Chromium writes), without PIL."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0
            channels = 4 if colour == 6 else 3
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(height):
        kind, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b = prev[x]
            c = prev[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + a) & 255
            elif kind == 2:
                line[x] = (line[x] + b) & 255
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


def _count_colour(pixels, hex_colour, tolerance=3):
    width, height, channels, rows = pixels
    want = tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    count = 0
    for row in rows:
        for x in range(0, width * channels, channels):
            if all(abs(row[x + k] - want[k]) <= tolerance for k in range(3)):
                count += 1
    return count


class _Cells(html.parser.HTMLParser):
    """Rows of the matrix table as [(tag, class, text)] from Chromium's DOM dump."""

    def __init__(self):
        super().__init__()
        self.rows, self.cell, self.in_body, self.scripts = [], None, False, 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "tbody":
            self.in_body = True
        elif tag == "tr" and self.in_body:
            self.rows.append([])
        elif tag in ("td", "th") and self.in_body:
            self.cell = [tag, attrs.get("class", ""), ""]

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(tuple(self.cell))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell[2] += (" " if self.cell[2] else "") + data


def _chromium(url, tmp_path, *extra):
    binary = chromium()
    cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--force-color-profile=srgb",
           "--hide-scrollbars", "--user-data-dir=%s" % (tmp_path / "chromium-profile")] + list(extra) + [url]
    return subprocess.run(cmd, capture_output=True, timeout=120, cwd=str(tmp_path))


@pytest.mark.skipif(chromium() is None, reason="chromium is not installed (Debian package 'chromium'; "
                                               ".ci/run installs it)")
def test_html_renders_in_headless_chromium(fleet, real, tmp_path):
    doc = variant(real.doc("plain"), hostname="<script>document.title='owned'</script>")
    write(fleet, "evil.yaml", doc)
    page = tmp_path / "matrix.html"
    status, _, err = cli("matrix", fleet, "-f", "html", "-o", page)
    assert status == 0, err
    url = "file://" + str(page)

    dom = _chromium(url, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    cells = _Cells()
    cells.feed(dom.stdout.decode("utf-8"))
    assert cells.scripts == 0 and b"<title>memprobe matrix</title>" in dom.stdout
    assert len(cells.rows) == 6
    caps = list(real.doc("plain")["summary"])
    expected_tone = {"works": "good", "enforced": "good", "blocked": "bad", "not_enforced": "bad",
                     "broken": "odd", "unknown": "none"}
    labels = [row[0][2] for row in cells.rows]
    assert "linux/x86_64/%s/<script>document.title='owned'</script>" % doc["host"]["kernel_release"] in labels
    for row in cells.rows:
        assert row[0][0] == "th" and len(row) == 1 + len(caps)
        for (tag, cls, text), cap in zip(row[1:], caps):
            assert tag == "td" and cls == expected_tone[text.split()[0]], (row[0][2], cap, cls, text)
    seen = {cls for row in cells.rows for _, cls, _ in row[1:]}
    assert {"good", "bad", "odd"} <= seen

    shot = tmp_path / "matrix.png"
    result = _chromium(url, tmp_path, "--screenshot=%s" % shot, "--window-size=1600,500")
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    pixels = _png_pixels(str(shot))
    counts = {name: _count_colour(pixels, matrix.COLOURS[name]) for name in ("good", "bad", "odd", "none")}
    # every tone on the page fills its cells (at least a few hundred pixels per cell) ...
    good_cells = sum(1 for row in cells.rows for _, cls, _ in row[1:] if cls == "good")
    assert counts["good"] > 300 * good_cells, counts
    assert counts["bad"] > 300 and counts["odd"] > 300, counts
    # ... and more cells of a tone give more of its colour (the legend adds one swatch each)
    bad_cells = sum(1 for row in cells.rows for _, cls, _ in row[1:] if cls == "bad")
    assert counts["good"] > counts["odd"] and bad_cells > 1 and counts["bad"] > counts["odd"], counts
    assert not os.path.exists(tmp_path / "owned")


def test_progress_only_on_a_terminal():
    class Stream(io.StringIO):
        def __init__(self, tty):
            super().__init__()
            self.tty = tty

        def isatty(self):
            return self.tty

    quiet, loud = Stream(False), Stream(True)
    for stream in (quiet, loud):
        progress = matrix._Progress(1000, stream)
        progress(500)
        progress(1000)
        progress.finish()
    assert quiet.getvalue() == ""
    assert "\rmatrix: 500/1000 reports" in loud.getvalue() and loud.getvalue().endswith("\r\x1b[K")
    small = Stream(True)
    matrix._Progress(3, small)(3)
    assert small.getvalue() == ""  # a few files finish before anyone could read it


def test_hostile_file_names(real, tmp_path):
    """Names from an artifact folder are not UTF-8 and may hold control characters."""
    name = os.fsdecode(b"\xff\x1b[31mred.yaml")
    write(tmp_path, name, real.doc("plain"))
    write_bytes(tmp_path, os.fsdecode(b"bad\xfe\x07.yaml"), HOSTILE["python-object"])
    for fmt in ("markdown", "csv", "json", "html"):
        status, out, err = run_matrix(tmp_path, "-f", fmt)
        assert status == 0, err
        assert "\x1b" not in out + err and "\x07" not in out + err
    data = json.loads(run_matrix(tmp_path, "-f", "json")[1])
    assert data["hosts"][0]["file"].endswith("\\udcff\\x1b[31mred.yaml")
    assert data["skipped"][0]["file"].endswith("bad\\udcfe\\x07.yaml")


def test_output_survives_a_terminal_without_unicode(real, tmp_path):
    doc = variant(real.doc("plain"), hostname="\u5317\u4eac-01")
    path = write(tmp_path, "r.yaml", doc)
    for args in (("matrix", path), ("show", path), ("diff", real.json("plain"), path)):
        status, out, err = cli(*args, env={"PYTHONIOENCODING": "latin-1"})
        assert status in (0, 2) and "\\u5317\\u4eac-01" in out, err
