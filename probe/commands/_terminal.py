"""What `memprobe run` shows a person at a terminal: progress while probing, then the
readable summary (as `memprobe show` prints it) and where the full report is. Piped or
with `--output -`, run prints the report itself, as programs expect."""

import sys

from probe.render.progress import RunProgress


def progress(only) -> RunProgress:
    """The progress callback for this run (silent unless stderr is a terminal)."""
    from probe.engine import runner as _runner
    return RunProgress(len(_runner.select_probes(only)), sys.stderr)


def collect(args) -> dict:
    """Run the probes as args say (run's probe options), with progress on a terminal's stderr."""
    from probe.report.collect import collect as collect_report
    progress_line = progress(args.only)
    try:
        return collect_report(args.only, args.isolation, args.timeout, getattr(args, "arm_mode", "arm"),
                              progress_line, args.jobs)
    finally:
        progress_line.finish()


def wants_summary(output, written) -> bool:
    """The summary instead of the report: stdout is a terminal and the report went to a file."""
    if output == "-" or not written:
        return False
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def summary(report: dict, path: str, perspective: str = "jit") -> str:
    from probe.commands import show
    from probe.render import text as _render
    from probe.report import output as _output
    palette = _render.Palette.for_stream(sys.stdout, "auto", perspective)
    return "%s\n%s %s\n" % (show.render(report, palette).rstrip("\n"), palette.paint("bold", "Full report:"),
                             _output.display(path))
