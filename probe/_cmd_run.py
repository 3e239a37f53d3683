"""`memprobe run`: probe this host, print the report and write it to reports/."""

import sys

from probe._errors import UsageError


def add_arguments(parser):
    parser.add_argument("--only", nargs="+", metavar="ID", help="run only these probes (see `memprobe list`)")
    parser.add_argument("--isolation", choices=("fork", "spawn"), default="fork",
                        help="fork from this process (fast, default) or spawn a fresh interpreter per probe")
    parser.add_argument("--timeout", type=_positive, default=10.0, metavar="S",
                        help="seconds before a probe is killed and counted as timeout (default 10)")
    parser.add_argument("--format", choices=("yaml", "json"), default="yaml")
    parser.add_argument("--output", "-o", metavar="PATH",
                        help="report file (default reports/<os>-<arch>-<host>.yaml); '-' for stdout only")
    parser.add_argument("--arm-mode", choices=("arm", "thumb"), default="arm",
                        help="32-bit ARM only: generate ARM or Thumb code")
    parser.add_argument("--junit", metavar="PATH", help="also write JUnit XML, one test case per probe")
    parser.add_argument("--quiet", "-q", action="store_true", help="do not print the report on stdout")


def _positive(text):
    try:
        value = float(text)
    except ValueError:
        raise UsageError("--timeout: %r is not a number" % text)
    if not value > 0 or value != value or value == float("inf"):
        raise UsageError("--timeout must be a positive number of seconds")
    return value


def collect(only=None, isolation="fork", timeout=10.0, arm_mode="arm", progress=None):
    """Run the probes and return the complete report dict."""
    from probe import _report, _runner
    arch_name, probes, measurements = _runner.run_all(only, isolation, timeout, arm_mode, progress)
    extra = {}
    try:
        from probe import _enrich
    except ImportError:
        _enrich = None
    if _enrich is not None:
        extra = _enrich.sections(probes)
    report = _report.build_report(arch_name, probes, measurements, isolation, timeout, extra)
    if _enrich is not None:
        _enrich.finish(report)
    return report


def main(args):
    from probe import _report
    report = collect(args.only, args.isolation, args.timeout, args.arm_mode)
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
