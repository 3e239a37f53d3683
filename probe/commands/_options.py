"""What `run` and `check --run` share: the options that say how the probes run, and
--pax-defaults (the same run again from an unmarked interpreter copy)."""

import argparse
import os
import sys

from probe.engine import children as _children
from probe.errors import HostError, Terminated, UsageError
from probe.report.collect import UNMARKED_ENV

# Test-only: make a copy even of an interpreter that carries no PaX markings.
FORCE_COPY_ENV = "MEMPROBE_TEST_FORCE_UNMARKED_COPY"
# Seconds the inner run of --pax-defaults gets to clean up after a forwarded signal.
_FORWARD_GRACE = 30


def add_probe_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that say how the probes run; `check --run` takes them too."""
    # extend: `--only a --only b` runs both (a plain nargs="+" keeps only the last).
    parser.add_argument("--only", nargs="+", action="extend", metavar="ID",
                        help="run only these probes (see `memprobe list`); may be repeated")
    parser.add_argument("--isolation", choices=("fork", "spawn"), default="fork",
                        help="fork from this process (fast, default) or spawn a fresh interpreter per probe")
    parser.add_argument("--timeout", type=_positive, default=10.0, metavar="S",
                        help="seconds before a probe is killed and counted as timeout (default 10)")
    parser.add_argument("--jobs", "-j", type=int, metavar="N",
                        help="probes run at once, each still in its own process (default: twice the CPUs, at most 4)")
    parser.add_argument("--pax-defaults", action="store_true",
                        help="PaX hosts: run the probes from an unmarked copy of the interpreter, "
                             "so results show the kernel's default flags, not the interpreter's exemptions")


def _positive(text):
    try:
        value = float(text)
    except ValueError:
        raise UsageError("--timeout: %r is not a number" % text)
    from probe.engine.children import MAX_TIMEOUT
    if not 0 < value <= MAX_TIMEOUT:      # also refuses nan and inf
        raise UsageError("--timeout must be a positive number of seconds, at most %g" % MAX_TIMEOUT)
    return value


def via_unmarked_copy(args: argparse.Namespace) -> "int | None":
    """Re-run this command from an unmarked interpreter copy; None when the interpreter
    has no markings (it already runs with the kernel's defaults). A signal that ends this
    process is passed on to the run inside the copy, and the copy is removed."""
    import subprocess   # only here: a plain run starts no other program
    from probe import policy as _policy
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
    import subprocess
    try:
        inner.send_signal(signum)
        inner.wait(timeout=_FORWARD_GRACE)
    except subprocess.TimeoutExpired:
        inner.kill()
        inner.wait()


