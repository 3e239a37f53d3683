"""`memprobe matrix REPORT... | DIR`: hosts x capabilities, for many reports.

Rows are hosts labelled os/arch/kernel/host, with the confinement the probes
ran under in brackets ([mdwe], [seccomp], an emulator), so one machine probed
plain and confined gives distinct rows. Reports that still share a label:
if they ran as different users, the uid joins the label ("non-root" for the null
uid of a redacted report); otherwise they are repeated runs of one host, and
`--duplicates newest` (default) keeps the newest by generated_at (ties: the
later file name), saying so on stderr, while `--duplicates all` keeps every one
as 'label #2', 'label #3' (oldest first).

Files are read in worker processes (one per CPU), each holding one document
at a time and sending back only its row. A file that cannot be read, parsed
or validated is skipped with a warning (`--strict`: exit 1 instead); so is,
in a directory, anything that is not a regular file (a FIFO would block the
run, a device could be endless), found by stat() and never opened.

Only the capabilities this memprobe knows become columns; a report's other
summary entries are dropped with a warning. The table is therefore at most
that wide, and its size grows with the reports read, not with their square.
"""

import argparse
import os
import signal
import sys
import time
from collections.abc import Iterator

from probe.report import output as _output
from probe.render import text as _render
from probe.render.text import clean
from probe.render.rows import _compact, build_matrix, read_row  # noqa: F401 - read_row: also the API
from probe.render.table import (COLOURS, ICONS, iter_json, render_csv, render_html,  # noqa: F401
                                render_json, render_markdown)
from probe.errors import EXIT_OK, HostError, InputError, UsageError

REPORT_SUFFIXES = (".yaml", ".yml", ".json")
_POOL_MIN_FILES = 64     # below this, starting workers costs more than it saves
_CHUNK = 32              # files per task sent to a worker
_MAX_WARNINGS = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
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
    from probe.render.perspective import add_perspective_argument
    add_perspective_argument(parser)


# --------------------------------------------------------------------------- reading

def find_reports(paths: "list[str]") -> "tuple[list[tuple[str, bool]], list[tuple[str, str]]]":
    """(files to read, [(path, reason)] skipped unopened).

    Each file given is read as it is (a FIFO named on the command line is meant).
    Directories are walked (sorted; hidden entries and symlinked directories left
    out); of the report-named entries there, only regular files (or symlinks to
    them) are read: `files` holds (path, True) for those, (path, False) for the
    ones given.
    """
    files, skipped = [], []
    for path in paths:
        if os.path.isdir(path):
            _walk(path, files, skipped)
        else:
            files.append((path, False))
    return files, skipped


def _walk(top, files, skipped):
    pending = [top]
    while pending:
        directory = pending.pop()
        try:
            with os.scandir(directory) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            skipped.append((directory, "%s: cannot list: %s" % (clean(directory, 0), exc.strerror or exc)))
            continue
        subdirectories = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                subdirectories.append(entry.path)
            elif entry.name.endswith(REPORT_SUFFIXES):
                kind = _special_kind(entry)
                if kind:
                    skipped.append((entry.path, "%s: %s, not a regular file; not opened"
                                    % (clean(entry.path, 0), kind)))
                elif not entry.is_dir():  # a symlink to a directory is not followed
                    files.append((entry.path, True))
        pending.extend(reversed(subdirectories))


def _special_kind(entry):
    """What a directory entry is when it is not a regular file (following a symlink), from
    the directory's d_type or stat(), never open(); None for a regular file or a dangling
    link (whose read then says why it failed)."""
    from probe.report.load import file_kind

    try:
        if entry.is_file() or entry.is_dir():
            return None
        return file_kind(entry.stat().st_mode)
    except OSError:
        return None


def _read_chunk(files):
    return [read_row(path, regular_only) for path, regular_only in files]


def read_rows(files: "list[tuple[str, bool]]", jobs: int,
              progress: "_Progress | None" = None) -> Iterator[tuple]:
    """Yield read_row() results for (path, regular_only) pairs, in parallel when it pays off."""
    if jobs > 1 and len(files) >= _POOL_MIN_FILES:
        yield from _read_in_workers(files, jobs, progress)
    else:
        for i, (path, regular_only) in enumerate(files, 1):
            yield read_row(path, regular_only)
            if progress and i % _CHUNK == 0:
                progress(i)


def _worker_start():
    # Ctrl-C reaches the whole process group: only the parent answers it (one line,
    # exit 130), so a worker ignores it rather than print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _read_in_workers(files, jobs, progress):
    """read_row() in a process pool. concurrent.futures, unlike multiprocessing.Pool, sees a
    worker die (the OOM killer's SIGKILL) and fails the pending work instead of waiting for
    it for ever."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    try:
        context = multiprocessing.get_context("fork")  # workers inherit the imported loader
    except ValueError:
        context = multiprocessing.get_context()
    chunks = [files[i:i + _CHUNK] for i in range(0, len(files), _CHUNK)]
    pool = ProcessPoolExecutor(min(jobs, len(chunks)), mp_context=context, initializer=_worker_start)
    workers, finished = [], False
    try:
        # The workers are forked at the first submit; SIGINT stays blocked until each ignores it.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            futures = [pool.submit(_read_chunk, chunks[0])]
            workers = list(getattr(pool, "_processes", {}).values())  # to name a death, to stop on Ctrl-C
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        futures += [pool.submit(_read_chunk, chunk) for chunk in chunks[1:]]
        done = 0
        for future in as_completed(futures):
            results = future.result()
            yield from results
            done += len(results)
            if progress:
                progress(done)
        finished = True
    except BrokenProcessPool:
        pool.shutdown(wait=True)  # every worker reaped: their exit statuses are final
        raise HostError("a process reading reports died%s; nothing was written (run again, or with "
                        "--jobs 1 to read in one process)" % _death(workers)) from None
    finally:
        if not finished:
            for worker in workers:
                if worker.exitcode is None:
                    worker.kill()
        pool.shutdown(wait=True, cancel_futures=True)


def _death(workers):
    """' (SIGKILL, ...)' for the signal that ended a worker, '' if none says. The pool
    stops the survivors with SIGTERM, so another signal is the cause."""
    signals = [-w.exitcode for w in workers if w.exitcode is not None and w.exitcode < 0]
    if signal.SIGKILL in signals:
        return " (SIGKILL, as the OOM killer sends)"
    causes = [n for n in signals if n != signal.SIGTERM] or signals
    if not causes:
        return ""
    try:
        return " (%s)" % signal.Signals(causes[0]).name
    except ValueError:
        return " (signal %d)" % causes[0]


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


# --------------------------------------------------------------------------- command

def _jobs(requested):
    if requested and requested > 0:
        return requested
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def collect(paths: "list[str]", jobs: int = 1, strict: bool = False,
            duplicates: str = "newest") -> "tuple[list[dict], list[str], list[tuple[str, str]], list[str]]":
    """(rows, capabilities, skipped, notes) for report paths and directories."""
    files, skipped = find_reports(paths)
    if not files and not skipped:
        raise UsageError("no report files found in %s" % ", ".join(clean(p, 80) for p in paths))
    progress = _Progress(len(files))
    rows = []
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


def _warn(lines, more):
    """The first _MAX_WARNINGS lines on stderr, then how many more there were."""
    for line in lines[:_MAX_WARNINGS]:
        sys.stderr.write("memprobe: %s\n" % line)
    if len(lines) > _MAX_WARNINGS:
        sys.stderr.write("memprobe: %s\n" % (more % (len(lines) - _MAX_WARNINGS)))


def _dropped_lines(rows):
    lines = []
    for row in rows:
        if row.get("dropped"):
            count, shown = row["dropped"]
            lines.append("%s: ignored %d capabilit%s this memprobe does not know (%s%s)" % (
                clean(row["file"], 0), count, "y" if count == 1 else "ies", ", ".join(shown),
                ", ..." if count > len(shown) else ""))
    return lines


def main(args: argparse.Namespace) -> int:
    _render.tolerant_stdout()
    args.format = _output.choose_format(args.output, args.format, _output.MATRIX_FORMATS, "markdown")
    from probe.report import load as _load

    _load.max_bytes_default()   # a bad MEMPROBE_MAX_REPORT_BYTES: one error, not one per file
    if args.github_summary and not os.environ.get("GITHUB_STEP_SUMMARY"):
        raise UsageError("--github-summary: GITHUB_STEP_SUMMARY is not set (it is, inside a GitHub Actions step)")
    rows, capabilities, skipped, notes = collect(args.paths, args.jobs, args.strict, args.duplicates)
    _warn([("warning: skipped %s" % reason) for _, reason in skipped], "warning: ... and %d more bad files skipped")
    _warn(["warning: %s" % line for line in _dropped_lines(rows)],
          "warning: ... and %d more reports with capabilities this memprobe does not know")
    _warn(["note: %s" % note for note in notes], "note: ... and %d more hosts with several reports")
    if not rows:
        raise InputError("no usable report among %d file%s" % (len(skipped), "" if len(skipped) == 1 else "s"))
    _render.write_text(args.output, _table(args.format, rows, capabilities, skipped, notes, args.title,
                                           args.perspective))
    if args.github_summary:
        _render.append_text(os.environ["GITHUB_STEP_SUMMARY"],
                            render_markdown(rows, capabilities, skipped, title=args.title,
                                            perspective=args.perspective) + "\n")
    return EXIT_OK


def _table(fmt, rows, capabilities, skipped, notes, title, perspective):
    """The table in one format: a str, or an iterable of str for JSON (written as it is made)."""
    if fmt == "markdown":
        return render_markdown(rows, capabilities, skipped, perspective=perspective)
    if fmt == "csv":
        return render_csv(rows, capabilities, skipped)
    if fmt == "json":
        return iter_json(rows, capabilities, skipped, notes)
    return render_html(rows, capabilities, skipped, title, perspective)
