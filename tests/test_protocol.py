"""The result pipe's protocol: every line carries its version; the parent turns a line it
cannot read into an `error` verdict, never into a result."""

import json
import os
import signal

import pytest

from conftest import memprobe_env, run_cli
from probe.engine import probes as _probes
from probe.engine import protocol
from probe.engine import runner as _runner
from probe.engine.worker import PROTOCOL_ENV


def test_every_line_carries_the_version_and_decodes_back():
    messages = [{"step": "mmap_rw"}, {"perms": "rw-p"}, {"result": {"value": 23, "notes": []}}]
    data = b"".join(protocol.encode(m) for m in messages)
    assert all(json.loads(line)[protocol.VERSION_KEY] == protocol.VERSION for line in data.splitlines())
    assert protocol.decode(data) == (messages, None)


def test_the_step_fast_path_is_the_same_json():
    assert json.loads(protocol.encode({"step": "call"})) == json.loads(
        json.dumps({protocol.VERSION_KEY: protocol.VERSION, "step": "call"}))


@pytest.mark.parametrize("line, problem", [
    (b'{"v":2,"step":"call"}', "protocol version 2"),
    (b'{"step":"call"}', "protocol version None"),
    (b'{"v":1,"step":"ca', "not a JSON line"),
    (b'[1, 2]', "not a JSON object"),
    (b'', "not a JSON line"),
])
def test_a_complete_line_that_cannot_be_read_is_a_problem(line, problem):
    good = protocol.encode({"step": "mmap_rw"})
    messages, found = protocol.decode(good + line + b"\n" + protocol.encode({"step": "call"}))
    assert messages == [{"step": "mmap_rw"}]
    assert problem in found


def test_a_last_line_cut_short_is_dropped_not_a_problem():
    data = protocol.encode({"step": "mmap_rw"}) + b'{"v":1,"step":"ca'
    assert protocol.decode(data) == ([{"step": "mmap_rw"}], None)


def _fork_writing(data):
    """A real child that writes `data` to its result pipe and exits 0; the runner's raw facts."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            os.write(wfd, data)
        finally:
            os._exit(0)
    os.close(wfd)
    return _runner.watch(_runner._Child(pid, rfd), 10.0)


def test_a_malformed_line_from_a_real_child_is_an_error_verdict():
    data = (protocol.encode({"step": "mmap_rw"}) + b"garbage\n"
            + protocol.encode({"result": {"value": 23, "notes": []}}))
    raw = _fork_writing(data)
    v = _runner.classify(_probes.by_id()["flip_rw_rx"], raw, 10.0)
    assert v["outcome"] == "error"
    assert "not a JSON line" in v["detail"] and "mmap_rw" in v["detail"]


def test_a_result_of_another_version_is_never_a_result():
    raw = _fork_writing(protocol.encode({"result": {"value": 23, "notes": []}}, version=2))
    v = _runner.classify(_probes.by_id()["flip_rw_rx"], raw, 10.0)
    assert (v["outcome"], v["value"]) == ("error", None)
    assert "protocol version 2" in v["detail"]


@pytest.mark.parametrize("isolation", ["fork", "spawn"])
def test_a_worker_of_another_protocol_version_makes_every_probe_an_error(isolation):
    proc = run_cli("run", "--only", "map_rx", "flip_rw_rx", "--isolation", isolation, "--format", "json",
                   "--output", "-", env=memprobe_env(**{PROTOCOL_ENV: "99"}))
    assert proc.returncode == 0, proc.stderr
    probes = json.loads(proc.stdout)["probes"]
    for pid in ("map_rx", "flip_rw_rx"):
        assert probes[pid]["outcome"] == "error"
        assert "protocol version 99, this memprobe reads version 1" in probes[pid]["detail"]
    # The same run with the worker's own version: the verdicts are real ones.
    proc = run_cli("run", "--only", "map_rx", "--isolation", isolation, "--format", "json", "--output", "-")
    assert json.loads(proc.stdout)["probes"]["map_rx"]["outcome"] != "error"


def test_a_crash_keeps_its_signal_when_every_line_was_readable():
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            os.write(wfd, protocol.encode({"step": "call"}))
            os.kill(os.getpid(), signal.SIGKILL)
        finally:
            os._exit(0)
    os.close(wfd)
    raw = _runner.watch(_runner._Child(pid, rfd), 10.0)
    assert raw["protocol_error"] is None
    v = _runner.classify(_probes.by_id()["flip_rw_rx"], raw, 10.0)
    assert (v["outcome"], v["step"]) == ("killed", "call")
