"""Pure parsers of /proc files, shared by the live readers and the policy detectors."""


def parse_status(text: str) -> "dict[str, str]":
    """`/proc/<pid>/status` as {key: value} with the value stripped."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out
