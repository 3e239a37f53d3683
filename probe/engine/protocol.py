"""The result pipe between a probe child and its parent, in one place.

A worker writes one JSON object per line: step announcements (`step`, `perms`,
`perms_unavailable`, `live_code`) and one final message (`result`, `denied`, `dropped`,
`skipped` or `error`). Every line carries the protocol version under `v`, so a parent
never reads a worker of another memprobe as if it were its own. The parent decodes the
lines with decode(): an unknown version or a line that is not a JSON object is a
protocol problem, which the classification turns into an `error` verdict.
"""

import json

VERSION = 1
VERSION_KEY = "v"


class ProtocolError(ValueError):
    """A line of the result pipe that this memprobe cannot read."""


def encode(message: dict, version: int = VERSION) -> bytes:
    """One message as a line of the result pipe."""
    if len(message) == 1 and "step" in message:
        # The hot path, before every risky step: a step name is a plain identifier, so no
        # JSON encoder (whose first use in a fresh child costs page copies).
        return b'{"%s":%d,"step":"%s"}\n' % (VERSION_KEY.encode(), version, message["step"].encode())
    line = json.dumps({VERSION_KEY: version, **message}, separators=(",", ":"))
    return (line + "\n").encode()


def decode_line(line: bytes) -> dict:
    """The message of one complete line, without its version. Raises ProtocolError."""
    try:
        message = json.loads(line)
    except ValueError:
        raise ProtocolError("not a JSON line: %r" % line[:80]) from None
    if not isinstance(message, dict):
        raise ProtocolError("not a JSON object: %r" % line[:80])
    version = message.pop(VERSION_KEY, None)
    if version != VERSION:
        raise ProtocolError("protocol version %r, this memprobe reads version %d" % (version, VERSION))
    return message


def decode(data: bytes) -> "tuple[list, str | None]":
    """The messages of everything a child wrote, and the first protocol problem (None).

    A last line without its newline was cut by the child's death (a crash between two
    writes): it is dropped and the lines before it still count.
    """
    lines = data.split(b"\n")
    lines.pop()         # after the last newline: empty, or a line cut short
    messages = []
    for line in lines:
        try:
            messages.append(decode_line(line))
        except ProtocolError as exc:
            return messages, str(exc)
    return messages, None
