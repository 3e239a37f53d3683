"""Classification of real child deaths: each signal keeps its own name."""

import os
import signal
import tempfile

import pytest

from probe.engine import arch as _arch
from probe.platform import libc as _libc
from probe.engine import probes as _probes
from probe.engine import protocol
from probe.engine import runner as _runner
from probe.engine import worker as _worker


def run_child(body, timeout=10.0):
    """Fork a child that runs body(send) and exits; the raw facts the runner sees."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        try:
            _worker._setup()
            send = lambda msg: os.write(wfd, protocol.encode(msg))  # noqa: E731
            send.fd = wfd
            body(send)
        finally:
            os._exit(0)
    os.close(wfd)
    return _runner.watch(_runner._Child(pid, rfd), timeout)


def classify(raw, probe_id="flip_rw_rx"):
    return _runner.classify(_probes.by_id()[probe_id], raw, 10.0)


def _call_code(code):
    page = _libc.mmap_(_libc.PAGESIZE, _libc.RW, _libc.MAP_PRIVATE | _libc.MAP_ANONYMOUS)
    _libc.write(page, code)
    _libc.mprotect(page, _libc.PAGESIZE, _libc.RX)
    _arch.Callable(_arch.TABLE[_runner.detect_arch()], page)()


needs_x86 = pytest.mark.skipif(_runner.detect_arch() not in ("x86_64", "i386"),
                               reason="the test's instructions are x86 (ud2)")


@needs_x86
def test_sigill_from_a_real_illegal_instruction():
    def body(send):
        send({"step": "call"})
        _call_code(b"\x0f\x0b")          # ud2
    v = classify(run_child(body))
    assert (v["outcome"], v["signal"], v["step"]) == ("crashed", "SIGILL", "call")


def test_sigbus_from_a_mapping_past_the_end_of_its_file():
    def body(send):
        fd, path = tempfile.mkstemp()
        os.unlink(path)
        addr = _libc.mmap_(_libc.PAGESIZE, _libc.RW, _libc.MAP_SHARED, fd)
        send({"step": "touch"})
        _libc.write(addr, b"x")          # the file is empty: no page behind it
    v = classify(run_child(body))
    assert (v["outcome"], v["signal"], v["signal_number"]) == ("crashed", "SIGBUS", signal.SIGBUS)
    assert v["step"] == "touch"


def test_sigabrt_keeps_its_name():
    def body(send):
        send({"step": "abort"})
        os.abort()
    v = classify(run_child(body))
    assert (v["outcome"], v["signal"]) == ("crashed", "SIGABRT")


def test_sigkill_is_killed_not_crashed():
    def body(send):
        send({"step": "call"})
        os.kill(os.getpid(), signal.SIGKILL)
    v = classify(run_child(body))
    assert (v["outcome"], v["signal"]) == ("killed", "SIGKILL")


def test_hang_is_timeout_with_the_last_step():
    def body(send):
        send({"step": "spin"})
        signal.pause()
    raw = run_child(body, timeout=0.3)
    v = classify(raw)
    assert raw["timed_out"]
    assert (v["outcome"], v["step"]) == ("timeout", "spin")


def test_exit_without_result_is_an_error():
    def body(send):
        send({"step": "half"})
        os._exit(3)
    v = classify(run_child(body))
    assert v["outcome"] == "error" and "status 3" in v["detail"] and "half" in v["detail"]


def test_a_line_cut_by_a_crash_does_not_hide_earlier_steps():
    def body(send):
        send({"step": "mmap_rw"})
        os.write(send.fd, b'{"step": "ca')     # dies half-way through a line
        os.kill(os.getpid(), signal.SIGSEGV)
    v = classify(run_child(body))
    assert [s["name"] for s in v["steps"]] == ["mmap_rw"]
    assert (v["outcome"], v["signal"], v["step"]) == ("crashed", "SIGSEGV", "mmap_rw")


def test_wrong_value_is_never_success():
    raw = {"messages": [{"step": "call"}, {"result": {"value": 7}}], "status": 0,
           "timed_out": False, "stderr": "", "duration_ms": 1.0}
    v = classify(raw)
    assert (v["outcome"], v["value"], v["expected"]) == ("wrong_result", 7, 23)
    v = classify(dict(raw, messages=[{"result": {"value": 23}}]), "repatch_rx")
    assert v["outcome"] == "wrong_result"     # a patching probe expects 42


class _StrippingMaps:
    """A maps source that hides X, as qemu 7.2's emulated /proc/self/maps does for an RWX
    page inside the heap."""

    def __init__(self, impl):
        self._impl = impl

    def mapping_perms(self, addr):
        return self._impl.mapping_perms(addr).replace("x", "-")

    def __getattr__(self, name):
        return getattr(self._impl, name)


def test_maps_without_x_but_running_code_is_allowed_with_a_note():
    from probe.platform import impl

    def body(send):
        ctx = _probes.Context(_arch.TABLE.get(_runner.detect_arch()), _StrippingMaps(impl), send)
        send({"result": {"value": _probes.by_id()["map_rwx"].run(ctx), "notes": []}})
    v = classify(run_child(body), "map_rwx")
    assert (v["outcome"], v["exec_dropped"], v["value"]) == ("allowed", False, 23)
    assert "the maps showed rw-p after mmap_rwx, yet the code ran" in v["detail"]


@needs_x86
def test_silently_dropped_exec_is_denied_once_the_call_faults():
    # What HardenedBSD PAGEEXEC does: the mmap asked for RWX "succeeds" but the page has no
    # X. Here the page really is RW only; the probe records the RWX request and calls.
    from probe.platform import impl

    def body(send):
        ctx = _probes.Context(_arch.TABLE[_runner.detect_arch()], impl, send)
        ctx.step("mmap_rwx")
        addr = _libc.mmap_(_libc.PAGESIZE, _libc.RW, _libc.MAP_PRIVATE | _libc.MAP_ANONYMOUS)
        ctx._perms("mmap_rwx", addr, _libc.RWX)
        ctx.write_code("write", addr)
        ctx.call("call", addr)
    v = classify(run_child(body), "map_rwx")
    assert (v["outcome"], v["exec_dropped"], v["step"], v["signal"]) == \
        ("denied", True, "mmap_rwx", "SIGSEGV")
    assert "silently dropped" in v["detail"]


def test_dropped_exec_on_a_probe_that_calls_nothing_is_denied():
    from probe.platform import impl

    def body(send):
        ctx = _probes.Context(None, _StrippingMaps(impl), send)
        _probes.by_id()["map_rx"].run(ctx)
        assert ctx.dropped == ("mmap_rx", "r--p")
        exc = _probes.ExecDropped(*ctx.dropped)
        send({"dropped": {"perms": exc.perms, "detail": str(exc)}})
    v = classify(run_child(body), "map_rx")
    assert (v["outcome"], v["exec_dropped"]) == ("denied", True)
