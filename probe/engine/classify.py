"""How a probe child ended, as a verdict: a parser of the lines it wrote, then one
function per kind of ending.

    classify(probe, raw, timeout) -> verdict dict

`raw` is what the parent collected (probe.engine.children.Watch.result): the decoded
messages, the exit status, whether the deadline passed, the end of stderr, the duration
and, where a line could not be decoded, the protocol problem.
"""

import errno
import os
import signal

from probe.engine.probes import Probe


class Transcript:
    """What a child's lines say: the steps it announced (with the permissions read back
    after each), the step at which the maps first showed no X, its final message and how
    it made its live code."""

    def __init__(self):
        self.steps = []
        self.dropped = None
        self.final = None
        self.live_code = None

    @property
    def last_step(self) -> "str | None":
        return self.steps[-1]["name"] if self.steps else None

    def at(self) -> str:
        """' at step NAME', or '' before the first step."""
        return " at step %s" % self.last_step if self.steps else ""

    def add(self, msg: dict) -> None:
        if "step" in msg:
            self.steps.append({"name": msg["step"]})
        elif "perms" in msg:
            self._perms(msg)
        elif "perms_unavailable" in msg:
            if self.steps:
                self.steps[-1]["perms_unavailable"] = msg["perms_unavailable"]
        elif "live_code" in msg:     # how repatch_rx / patch_rwx made live code
            self.live_code = msg["live_code"]
        else:
            self.final = msg

    def _perms(self, msg):
        if not self.steps:
            return
        self.steps[-1]["perms"] = msg["perms"]
        if msg.get("x_missing") and self.dropped is None:
            self.dropped = self.steps[-1]


def parse(messages: list) -> Transcript:
    """The transcript of a child's decoded messages, in the order it wrote them."""
    transcript = Transcript()
    for msg in messages:
        transcript.add(msg)
    return transcript


def signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return "SIG%d" % num


def blank(probe: Probe, duration_ms: float, steps: "list | None" = None) -> dict:
    """A verdict with every field present and nothing decided."""
    return {"outcome": None, "step": None, "errno": None, "errno_name": None, "signal": None,
            "signal_number": None, "value": None, "expected": probe.expected,
            "exec_dropped": False, "duration_ms": duration_ms, "detail": None,
            "steps": steps if steps is not None else []}


def skipped(probe: Probe, reason: str) -> dict:
    """The verdict of a probe that was not run here, and why."""
    return dict(blank(probe, 0.0), outcome="skipped", detail=reason)


def classify(probe: Probe, raw: dict, timeout: float) -> dict:
    """Turn a child's exit status, messages and last step into a verdict dict."""
    transcript = parse(raw["messages"])
    out = blank(probe, raw["duration_ms"], transcript.steps)
    out["step"] = transcript.last_step
    if transcript.live_code is not None:
        out["live_code"] = transcript.live_code
    status = raw["status"]
    if raw.get("protocol_error"):
        return _unreadable(out, transcript, raw["protocol_error"])
    if raw["timed_out"]:
        return _timed_out(out, transcript, timeout)
    if os.WIFSIGNALED(status):
        return _signalled(out, transcript, os.WTERMSIG(status))
    if transcript.final is None:
        return _no_result(out, transcript, status, raw["stderr"])
    return _final(out, transcript, probe)


# --- one function per kind of ending ---------------------------------------------------

def _unreadable(out, transcript, problem):
    # A line memprobe cannot read (another protocol version, not JSON): nothing the child
    # said can be trusted, so no verdict but an error.
    return dict(out, outcome="error", detail="the worker's result pipe is unreadable%s: %s"
                % (transcript.at(), problem))


def _timed_out(out, transcript, timeout):
    return dict(out, outcome="timeout", detail="no result within %gs%s; the probe was killed"
                % (timeout, transcript.at()))


def _signalled(out, transcript, sig):
    out.update(signal=signal_name(sig), signal_number=sig)
    if transcript.dropped is not None:
        return _exec_dropped_then_faulted(out, transcript.dropped)
    if sig == signal.SIGKILL:
        out["outcome"] = "killed"
    else:
        out["outcome"] = "crashed"
    described = signal.strsignal(sig) if hasattr(signal, "strsignal") else out["signal"]
    out["detail"] = "terminated by %s (%s)%s" % (out["signal"], described, transcript.at())
    return out


def _exec_dropped_then_faulted(out, dropped):
    # The kernel said yes, the maps showed no X, and running the code faulted:
    # PROT_EXEC was silently dropped at that step (HardenedBSD PAGEEXEC).
    out.update(outcome="denied", exec_dropped=True, step=dropped["name"])
    out["detail"] = ("%s succeeded but the mapping is %s: PROT_EXEC was silently dropped; "
                     "calling the code then died of %s" % (dropped["name"], dropped["perms"], out["signal"]))
    return out


def _no_result(out, transcript, status, stderr):
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
    last_words = (": " + stderr.splitlines()[-1]) if stderr else ""
    return dict(out, outcome="error", detail="worker exited with status %s without a result%s%s"
                % (code, transcript.at(), last_words))


def _final(out, transcript, probe):
    """The child ended on its own after a final message: which one decides."""
    for key, ending in _FINAL_MESSAGES:
        if key in transcript.final:
            return ending(out, transcript, probe)
    return dict(out, outcome="error", detail=str(transcript.final.get("error", transcript.final)))


def _result(out, transcript, probe):
    value = transcript.final["result"].get("value")
    out["value"] = value
    if probe.expected is None or value == probe.expected:
        out.update(outcome="allowed", detail=_success(transcript, probe, value))
    else:
        out.update(outcome="wrong_result", detail="the code ran but returned %r, expected %r%s"
                   % (value, probe.expected, transcript.at()))
    notes = "; ".join(transcript.final["result"].get("notes") or [])
    if notes:
        out["detail"] += "; " + notes
    if transcript.dropped is not None:
        out["detail"] += ("; the maps showed %s after %s, yet the code ran: this maps source "
                          "does not show X here" % (transcript.dropped["perms"], transcript.dropped["name"]))
    return out


def _success(transcript, probe, value):
    if probe.expected is not None:
        return "the code ran and returned %r" % value
    perms = next((s["perms"] for s in reversed(transcript.steps) if "perms" in s), None)
    return "succeeded" + (" (mapping is %s)" % perms if perms else "")


def _refused(out, transcript, probe):
    num = transcript.final["denied"]["errno"]
    name = errno.errorcode.get(num, "E%d" % num)
    out.update(outcome="denied", errno=num, errno_name=name)
    out["detail"] = "%s refused: %s (%s)" % (transcript.last_step or "a call", name, os.strerror(num))
    return out


def _dropped(out, transcript, probe):
    return dict(out, outcome="denied", exec_dropped=True, detail=transcript.final["dropped"]["detail"])


def _skipped(out, transcript, probe):
    return dict(out, outcome="skipped", detail=transcript.final["skipped"])


# The final messages a worker sends (probe.engine.worker) and how each reads.
_FINAL_MESSAGES = (("result", _result), ("denied", _refused), ("dropped", _dropped),
                   ("skipped", _skipped))
