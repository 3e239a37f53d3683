"""The child side of a probe: set the process up, run one task, report over the pipe.

Used directly after fork() (`--isolation fork`) and as the hidden `_worker` command
when the CLI re-runs itself in a fresh interpreter (`--isolation spawn`). Results go
to a dedicated pipe as one JSON line per message, never to stdout.
"""

import os
import signal
import sys

from probe.engine import protocol, rawsignal

# Signals a probe may legitimately die of: the default action must run, whatever a
# parent (pytest, a CI runner, faulthandler) installed.
EXPECTED_SIGNALS = [getattr(signal, n) for n in
                    ("SIGSEGV", "SIGBUS", "SIGILL", "SIGSYS", "SIGABRT", "SIGTRAP", "SIGFPE")
                    if hasattr(signal, n)]

# Test-only hooks: a probe id that hangs instead of running, to prove the timeout path,
# and a protocol version to write instead of this memprobe's, to prove the parent refuses it.
HANG_ENV = "MEMPROBE_TEST_HANG"
PROTOCOL_ENV = "MEMPROBE_TEST_PROTOCOL_VERSION"


def _setup():
    import faulthandler
    import gc
    gc.disable()   # a short-lived child: collecting only copies the parent's pages
    import resource
    faulthandler.disable()
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError):
        pass
    from probe.platform import impl
    disable = getattr(impl, "disable_core_dumps", None)
    if disable is not None:
        disable()
    for sig in EXPECTED_SIGNALS:
        rawsignal.set_handler(sig, rawsignal.SIG_DFL)
    if rawsignal.pthread_sigmask is not None:
        rawsignal.pthread_sigmask(rawsignal.SIG_UNBLOCK, EXPECTED_SIGNALS)


def child_main(task: str, fd: int, arch_name: "str | None") -> None:
    """Run `task` (a probe id or `measure:flip_cycle`) and exit; never returns."""
    version = int(os.environ.get(PROTOCOL_ENV) or protocol.VERSION)

    def send(obj):
        os.write(fd, protocol.encode(obj, version))

    try:
        _setup()
        _run(task, arch_name, send, fd)
    except BaseException as exc:  # noqa: BLE001 - everything must reach the parent as a line
        try:
            send({"error": "%s: %s" % (type(exc).__name__, exc)})
        except OSError:
            pass
    finally:
        os._exit(0)


def _run(task, arch_name, send, fd=None):
    from probe.engine import arch as _arch
    from probe.engine import probes as _probes
    from probe.platform import impl

    if os.environ.get(HANG_ENV) == task:
        _hang(send)
    arch = _arch.TABLE.get(arch_name) if arch_name else None
    ctx = _probes.Context(arch, impl, send, fd)
    try:
        send(_final_message(task, ctx))
    except _probes.Refused as exc:
        # The only way to `denied`: the operation under test refused. Any other OSError
        # is memprobe's own failure and reaches the parent as an error.
        send({"denied": {"errno": exc.errno}})
    except _probes.SetupFailed as exc:
        send({"error": str(exc)})
    except _probes.ExecDropped as exc:
        send({"dropped": {"perms": exc.perms, "detail": str(exc)}})
    except _probes.WrongValue as exc:
        send({"result": {"value": exc.value, "notes": ctx.notes}})
    except NotImplementedError as exc:
        send({"skipped": str(exc) or "not available here"})


def _hang(send):
    send({"step": "test_hang"})
    while True:
        signal.pause()


def _final_message(task, ctx):
    """Run the task; the message of a run that raised nothing."""
    from probe.engine import probes as _probes

    if task == "measure:flip_cycle":
        return {"result": {"measurement": _probes.measure_flip_cycle(ctx)}}
    probe = _probes.by_id()[task]
    value = probe.run(ctx)
    if probe.expected is None and ctx.dropped:
        raise _probes.ExecDropped(*ctx.dropped)   # nothing was called to prove X either way
    return {"result": {"value": value, "notes": ctx.notes}}


if __name__ == "__main__":  # pragma: no cover - the CLI is the entry point
    sys.exit("use `memprobe _worker`")
