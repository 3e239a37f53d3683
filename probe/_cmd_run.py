"""`memprobe run`: probe this host, print the report and write it to reports/."""

import os
import subprocess
import sys

from probe import _children
from probe._errors import HostError, Terminated, UsageError

# Set in a run started through an unmarked interpreter copy: the original interpreter.
UNMARKED_ENV = "MEMPROBE_UNMARKED_COPY_OF"
# Test-only: make a copy even of an interpreter that carries no PaX markings.
FORCE_COPY_ENV = "MEMPROBE_TEST_FORCE_UNMARKED_COPY"
# Seconds the inner run of --pax-defaults gets to clean up after a forwarded signal.
_FORWARD_GRACE = 30


def add_arguments(parser):
    parser.add_argument("--only", nargs="+", metavar="ID", help="run only these probes (see `memprobe list`)")
    parser.add_argument("--isolation", choices=("fork", "spawn"), default="fork",
                        help="fork from this process (fast, default) or spawn a fresh interpreter per probe")
    parser.add_argument("--timeout", type=_positive, default=10.0, metavar="S",
                        help="seconds before a probe is killed and counted as timeout (default 10)")
    parser.add_argument("--jobs", "-j", type=int, metavar="N",
                        help="probes run at once, each still in its own process (default: CPUs, at most 4)")
    parser.add_argument("--format", choices=("yaml", "json"), default="yaml")
    parser.add_argument("--output", "-o", metavar="PATH",
                        help="report file (default reports/<os>-<arch>-<host>.yaml); '-' for stdout only")
    parser.add_argument("--arm-mode", choices=("arm", "thumb"), default="arm",
                        help="32-bit ARM only: generate ARM or Thumb code")
    parser.add_argument("--junit", metavar="PATH", help="also write JUnit XML, one test case per probe")
    parser.add_argument("--quiet", "-q", action="store_true", help="do not print the report on stdout")
    parser.add_argument("--pax-defaults", action="store_true",
                        help="PaX hosts: run the probes from an unmarked copy of the interpreter, "
                             "so results show the kernel's default flags, not the interpreter's exemptions")


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
    return report


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


def main(args):
    from probe import _report
    if args.pax_defaults and not os.environ.get(UNMARKED_ENV):
        code = _via_unmarked_copy(args)
        if code is not None:
            return code
    report = collect(args.only, args.isolation, args.timeout, args.arm_mode, jobs=args.jobs)
    text = _report.dumps(report, args.format)
    if args.output != "-":
        path = args.output or _report.default_path(report, args.format)
        _report.write_atomic(path, text)
        sys.stderr.write("memprobe: report written to %s\n" % path)
    if args.junit:
        from probe._collect import _junit
        _report.write_atomic(args.junit, _junit.run_junit(report))
    if not args.quiet:
        sys.stdout.write(text)
        sys.stdout.flush()
    return 0
