"""`memprobe run`: probe this host, print the report and write it to reports/."""

import os
import subprocess
import sys

from probe import _children, _run_terminal
from probe._errors import HostError, OutputError, Terminated, UsageError

# Set in a run started through an unmarked interpreter copy: the original interpreter.
UNMARKED_ENV = "MEMPROBE_UNMARKED_COPY_OF"
# Test-only: make a copy even of an interpreter that carries no PaX markings.
FORCE_COPY_ENV = "MEMPROBE_TEST_FORCE_UNMARKED_COPY"
# Seconds the inner run of --pax-defaults gets to clean up after a forwarded signal.
_FORWARD_GRACE = 30


def add_probe_arguments(parser):
    """The options that say how the probes run; `check --run` takes them too."""
    # extend: `--only a --only b` runs both (a plain nargs="+" keeps only the last).
    parser.add_argument("--only", nargs="+", action="extend", metavar="ID",
                        help="run only these probes (see `memprobe list`); may be repeated")
    parser.add_argument("--isolation", choices=("fork", "spawn"), default="fork",
                        help="fork from this process (fast, default) or spawn a fresh interpreter per probe")
    parser.add_argument("--timeout", type=_positive, default=10.0, metavar="S",
                        help="seconds before a probe is killed and counted as timeout (default 10)")
    parser.add_argument("--jobs", "-j", type=int, metavar="N",
                        help="probes run at once, each still in its own process (default: CPUs, at most 4)")
    parser.add_argument("--pax-defaults", action="store_true",
                        help="PaX hosts: run the probes from an unmarked copy of the interpreter, "
                             "so results show the kernel's default flags, not the interpreter's exemptions")


def add_arguments(parser):
    add_probe_arguments(parser)
    parser.add_argument("--format", choices=("yaml", "json"),
                        help="report format (default: the --output file's extension, else yaml)")
    parser.add_argument("--output", "-o", metavar="PATH",
                        help="report file (default reports/<os>-<arch>-<host>.yaml, with -only-.../-mdwe/"
                             "-seccomp/-nonroot/... added for a subset or confined run); '-' for stdout only")
    parser.add_argument("--arm-mode", choices=("arm", "thumb"), default="arm",
                        help="32-bit ARM only: generate ARM or Thumb code")
    parser.add_argument("--junit", metavar="PATH", help="also write JUnit XML, one test case per probe")
    parser.add_argument("--quiet", "-q", action="store_true", help="do not print the report on stdout")
    parser.add_argument("--redact", action="store_true",
                        help="pseudonymise the host name and drop user names, home directories, "
                             "private mount points and non-root uids from the report (see `memprobe redact`)")
    parser.add_argument("--like-unit", metavar="UNIT",
                        help="run the probes in a transient systemd unit with UNIT's sandbox properties")
    from probe._collect._render import add_perspective_argument
    add_perspective_argument(parser)


def _positive(text):
    try:
        value = float(text)
    except ValueError:
        raise UsageError("--timeout: %r is not a number" % text)
    from probe._children import MAX_TIMEOUT
    if not 0 < value <= MAX_TIMEOUT:      # also refuses nan and inf
        raise UsageError("--timeout must be a positive number of seconds, at most %g" % MAX_TIMEOUT)
    return value


def collect(only=None, isolation="fork", timeout=10.0, arm_mode="arm", progress=None, jobs=None):
    """Run the probes, detect the policies in force, attribute; the complete report dict."""
    from probe import _attribution, _policy, _report, _runner
    arch_name, probes, measurements = _runner.run_all(only, isolation, timeout, arm_mode, progress,
                                                      jobs)
    extra = {"policies": _policy.detect()}
    report = _report.build_report(arch_name, probes, measurements, isolation, timeout, extra)
    if os.environ.get(UNMARKED_ENV):
        report["process"]["unmarked_copy_of"] = os.environ[UNMARKED_ENV]
    _attribution.attribute(report)   # adds per-probe attribution, strategies, recommendation
    return _report.escape_undecodable(report)   # e.g. a hostname that is not UTF-8


def _via_unmarked_copy(args):
    """Re-run this command from an unmarked interpreter copy; None when the interpreter
    has no markings (it already runs with the kernel's defaults). A signal that ends this
    process is passed on to the run inside the copy, and the copy is removed."""
    from probe import _policy
    info = inner = None
    try:
        # Held back until what is made (the copy, the inner run) is recorded for cleanup.
        with _children.signals_blocked():
            info = _policy.unmarked_interpreter(force=bool(os.environ.get(FORCE_COPY_ENV)))
        if info["path"] is None:
            if info["markings"].get("source"):
                raise HostError("--pax-defaults: no unmarked interpreter copy can run here: %s"
                                % info["reason"])
            sys.stderr.write("memprobe: --pax-defaults: %s\n" % info["reason"])
            return None
        argv = [a for a in args.argv if a != "--pax-defaults"]
        env = dict(os.environ)
        env[UNMARKED_ENV] = os.path.realpath(sys.executable)
        env.pop(FORCE_COPY_ENV, None)
        cmd = [info["path"]] + _children.isolated_args(_children.import_path()) + argv
        with _children.signals_blocked():   # the inner run unblocks them first thing
            inner = subprocess.Popen(cmd, env=env)
        code = inner.wait()
        return 128 - code if code < 0 else code    # killed by a signal: as a shell says it
    except Terminated as exc:
        if inner is not None:
            _forward(inner, exc.signum)
        raise
    finally:
        if info is not None:
            _policy.discard_unmarked(info)


def _forward(inner, signum):
    """Pass the signal on and give the inner run time to kill its children and remove
    its files; then it is killed."""
    try:
        inner.send_signal(signum)
        inner.wait(timeout=_FORWARD_GRACE)
    except subprocess.TimeoutExpired:
        inner.kill()
        inner.wait()


def _default_path(report, fmt, only):
    """reports/<os>-<arch>-<host>[-conditions].<ext>, saying on stderr when a subset or
    confined run is kept apart from the host's full report."""
    from probe import _report_name
    path, full, conditions = _report_name.default_run_path(report, fmt, only)
    if conditions:
        sys.stderr.write("memprobe: not a full unconfined run (%s): writing %s, not %s\n"
                         % (", ".join(conditions), path, full))
    return path


def main(args):
    from probe import _output, _report
    fmt = _output.choose_format(args.output, args.format)
    for path in (args.output, args.junit):   # before the probes run, not after
        _output.refuse_directory(path)
    if args.pax_defaults and not os.environ.get(UNMARKED_ENV):
        code = _via_unmarked_copy(args)
        if code is not None:
            return code
    if args.redact:   # the key first: a missing key file must not cost a whole run
        from probe import _redact
        redaction_key = _redact.host_key()
    if args.like_unit:
        from probe import _like_unit
        report = _like_unit.collect(args)
    else:
        report = _run_terminal.collect(args)
    if args.redact:
        report = _redact.redact_report(report, key=redaction_key)
    text = _report.dumps(report, fmt)
    failures, written = _write_files(args, report, text, fmt)
    if not args.quiet and _run_terminal.wants_summary(args.output, written):
        _output.write_stdout(_run_terminal.summary(report, written, args.perspective))
    elif not args.quiet:   # even when a file failed: the probing work must not be lost
        if not _output.stdout_takes_utf8():
            text = _report.dumps(report, fmt, ascii_only=True)
        _output.write_stdout(text)
    _output.raise_first(failures)
    return 0


def _write_files(args, report, text, fmt):
    """Write the report file and the JUnit file: (the OutputErrors of those that failed,
    the report file's path or None when none was written)."""
    from probe import _output
    failures, written = [], None
    if args.output != "-":
        path = args.output or _default_path(report, fmt, args.only)
        try:
            _output.write_file(path, text)
            written = path
            sys.stderr.write("memprobe: report written to %s\n" % _output.display(path))
        except OutputError as exc:
            failures.append(exc)
    if args.junit:
        from probe._collect import _junit
        try:
            _output.write_file(args.junit, _junit.run_junit(report))
        except OutputError as exc:
            failures.append(exc)
    return failures, written
