"""`memprobe run`'s progress line on a terminal's stderr: how many probes are done and
which are running, each with its seconds so far, so a probe that hangs shows before its
timeout kills it. Nothing is written when stderr is not a terminal (logs stay clean)."""

import os
import sys
import time


class RunProgress:
    """A progress callback for the runner: called as each probe ends, with started() as
    each begins and tick() about once a second in between."""

    def __init__(self, total: int, stream=None, clock=time.monotonic):
        self.stream = stream if stream is not None else sys.stderr
        self.total = total
        self.done = 0
        self.running = {}          # probe id -> when it started
        self.clock = clock
        self.shown = None          # the status line on the screen, if any
        try:
            self.enabled = self.stream.isatty()
        except (AttributeError, ValueError):
            self.enabled = False

    def started(self, probe_id: str) -> None:
        self.running[probe_id] = self.clock()
        self._draw()

    def __call__(self, probe_id: str, verdict: dict) -> None:
        self.running.pop(probe_id, None)
        self.done += 1
        if verdict.get("outcome") == "timeout" and self.enabled:
            # kept on the screen: the status line alone would lose it at the next redraw
            self._write("\r\033[Kmemprobe: %s: %s\n" % (probe_id, verdict.get("detail") or "timeout"))
            self.shown = None
        self._draw()

    def tick(self) -> None:
        self._draw()

    def finish(self) -> None:
        """Clear the status line (the report's own lines follow)."""
        if self.shown:
            self._write("\r\033[K")
            self.shown = None

    def line(self) -> str:
        """The status text: `[done/total] running: slowest Ns, next Ms`."""
        now = self.clock()
        ages = sorted(((now - t, pid) for pid, t in self.running.items()), reverse=True)
        running = ", ".join("%s %ds" % (pid, age) for age, pid in ages)
        return "memprobe: [%d/%d] %s" % (self.done, self.total,
                                         "running: " + running if running else "probes done")

    def _draw(self):
        if not self.enabled:
            return
        text = self.line()[:self._width() - 1]
        if text != self.shown:   # redraw only what changed: one write a second at most
            self._write("\r\033[K" + text)
            self.shown = text

    def _width(self):
        try:
            return os.get_terminal_size(self.stream.fileno()).columns or 80
        except (AttributeError, ValueError, OSError):
            return 80

    def _write(self, text):
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            self.enabled = False   # a terminal that went away must not end the run
