"""The command line: a table of commands, each a module with add_arguments() and main().

Command modules are imported only when their command runs, so `memprobe run`
does not pay for the collector tools.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from probe import __version__
from probe.commands import _exit_codes
from probe.errors import (EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_SIGNAL_BASE, EXIT_USAGE,
                          STOP_SIGNALS, MemprobeError, Terminated)

# Names for the type checker only: importing typing would slow `memprobe run` down.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Sequence

# name -> (module, one-line help). Order is the order of `memprobe --help`.
COMMANDS = {
    "run": ("probe.commands.run", "run the probes on this host and write a report"),
    "list": ("probe.commands.list", "list the probes with a one-line description"),
    "show": ("probe.commands.show", "print a report as a readable summary"),
    "diff": ("probe.commands.diff", "compare two reports"),
    "matrix": ("probe.commands.matrix", "tabulate many reports: hosts x capabilities"),
    "check": ("probe.commands.check", "check a report against expectations (CI gate)"),
    "validate": ("probe.commands.validate", "check reports against the report schema"),
    "redact": ("probe.commands.redact", "a copy of a report without host name, user names and private paths"),
    "capture-fixture": ("probe.commands.capture_fixture", "copy this host's policy sources into a fixture tree"),
    "report": ("probe.commands.report", "print a report as Markdown for a bug tracker (--for-issue)"),
    "completion": ("probe.commands.completion", "print a shell completion script (bash, zsh, fish)"),
    # Internal: the parent re-runs the CLI as an isolated worker (--isolation spawn).
    "_worker": ("probe.commands.worker", argparse.SUPPRESS),
}

class _Parser(argparse.ArgumentParser):
    """argparse that exits with our usage code and a one-line message."""

    def error(self, message):
        self.exit(EXIT_USAGE, "memprobe: error: %s\n" % message)


def _terminal_columns():
    """shutil.get_terminal_size().columns, without importing shutil (and with it bz2, lzma
    and zlib) in every `memprobe run`: argparse asks for a formatter per argument."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Help text as written (the exit-code epilogs are laid out by hand)."""

    def __init__(self, prog, indent_increment=2, max_help_position=24, width=None, **options):
        width = _terminal_columns() - 2 if width is None else width
        super().__init__(prog, indent_increment, max_help_position, width, **options)  # 3.14: color


def _build_parser(only=None):
    parser = _Parser(
        prog="memprobe",
        description="Probe which code-loading strategies this host allows (NX, W^X, RWX, "
        "double mapping) and which mechanism blocks the others.",
        epilog=_exit_codes.epilog(),
        formatter_class=_Formatter,
    )
    parser.add_argument("-V", "--version", action="version", version="memprobe %s" % __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (modname, helptext) in COMMANDS.items():
        hidden = helptext is argparse.SUPPRESS
        if name != only and (only is not None or hidden):
            # Another command's parser is only for `memprobe --help` and typos, where an
            # internal command is never offered (argparse would list it among the choices).
            continue
        kwargs = {"epilog": _exit_codes.epilog(name), "formatter_class": _Formatter}
        if not hidden:
            kwargs["help"] = helptext
            kwargs["description"] = helptext
        cmd = sub.add_parser(name, **kwargs)
        module = importlib.import_module(modname)
        module.add_arguments(cmd)
        cmd.set_defaults(_module=module)
    return parser


def _on_stop_signal(signum, frame):
    # A second signal must not cut the cleanup short: it is bounded (SIGKILL and reap).
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise Terminated(signum)


def _catch_stop_signals(command):
    """For `run`, which has children and files to clean up: turn the stop signals into
    Terminated; one that was ignored when we started (nohup) stays ignored.
    -> the previous handlers, to put back."""
    if hasattr(signal, "pthread_sigmask"):
        # A parent may have started us with them blocked while it forked (see _children).
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    previous = {}
    # Not imported, threading has started no thread: this is the main one. (Importing it
    # would make every forked probe child run its at-fork handler.)
    threading = sys.modules.get("threading")
    if command != "run" or (threading and threading.current_thread() is not threading.main_thread()):
        return previous
    for sig in STOP_SIGNALS:
        if signal.getsignal(sig) in (signal.SIG_DFL, signal.default_int_handler):
            previous[sig] = signal.signal(sig, _on_stop_signal)
    return previous


def _command(argv):
    first = next((a for a in argv if not a.startswith("-")), None)
    return first if first in COMMANDS else None


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The `memprobe` command: run the command argv names; the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        from probe.report import output as _output
        _output.guard_standard_fds()
    except MemoryError:
        sys.stderr.write("memprobe: error: out of memory\n")    # as _main says it
        return EXIT_USAGE
    previous = _catch_stop_signals(_command(argv))
    try:
        return _main(argv)
    except Terminated as exc:
        sys.stderr.write("memprobe: stopped by %s\n" % signal.Signals(exc.signum).name)
        return EXIT_SIGNAL_BASE + exc.signum
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def console_main() -> int:
    """The `memprobe` program (console script and `python -m probe`): main(), then the
    objects it made are frozen out of the garbage collector. The interpreter is about to
    exit, and its final collections would otherwise walk every one of them: about 4 ms,
    a tenth of a run's own work."""
    code = main()
    import gc
    gc.freeze()
    return code


def _main(argv):
    # Build only the sub-parser that will run: keeps start-up cheap.
    only = _command(argv)
    try:
        parser = _build_parser(only)
        args = parser.parse_args(argv)
        args.argv = argv   # for commands that re-run themselves (run --pax-defaults)
        args.full_parser = _build_parser   # for commands that describe the command line (completion)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        return args._module.main(args)
    except MemprobeError as exc:
        sys.stderr.write("memprobe: error: %s\n" % exc)
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("memprobe: interrupted\n")
        return EXIT_INTERRUPTED
    except MemoryError:
        # Out of memory in memprobe's own bookkeeping: whatever was started is gone by now.
        sys.stderr.write("memprobe: error: out of memory\n")
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader left early (`memprobe show | head`): no message, as such readers expect,
        # but not success either, since what it got was cut.
        from probe.report import output as _output
        _output.silence_stdout()
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - the one place that turns bugs into a line
        if isinstance(exc, ImportError) and exc.name == "yaml":
            # An install without its dependency (a bare copy, a venv made by hand).
            sys.stderr.write("memprobe: error: PyYAML is not installed for %s: pip install PyYAML\n"
                             % sys.executable)
            return EXIT_USAGE
        if os.environ.get("MEMPROBE_DEBUG"):
            raise
        sys.stderr.write("memprobe: internal error: %s: %s (set MEMPROBE_DEBUG=1 for a traceback)\n"
                         % (type(exc).__name__, exc))
        return EXIT_INTERNAL
