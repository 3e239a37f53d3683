"""The exit codes each command's `--help` lists: only those that command can return."""

_OK = "  0   success"
_USAGE = ("  1   usage or input error (bad arguments, unreadable or invalid input, an output\n"
          "      file or stdout that cannot be written completely)")
_INTERNAL = "  70  internal error in memprobe (set MEMPROBE_DEBUG=1 for a traceback)"
_CTRL_C = "  130 interrupted (Ctrl-C)"

# Lines that differ from the common ones, by command.
_SPECIAL = {
    "run": [
        "  0   a report was written, whatever the verdicts",
        _USAGE[:-1] + ";\n      the host cannot run the probes)",
        _INTERNAL,
        "  129 ended by SIGHUP, 130 by SIGINT (Ctrl-C), 143 by SIGTERM (128 + the signal);\n"
        "      every probe child is killed and the temporary files are removed",
    ],
    "diff": [_OK + ": the reports are the same", "  1   usage or input error (bad arguments, "
             "unreadable or invalid report)", "  2   the reports differ", _INTERNAL, _CTRL_C],
    "check": [_OK + ": every expectation holds", _USAGE, "  2   some expectation does not hold",
              "  3   some expectation could not be decided (skipped/unknown), or none applies",
              _INTERNAL, _CTRL_C],
}

_ALL = [
    "  0   success (run: a report was written, whatever the verdicts)",
    _USAGE,
    "  2   diff: the reports differ; check: some expectation does not hold",
    "  3   check: some expectation could not be decided (skipped/unknown)",
    _INTERNAL,
    "  129 ended by SIGHUP, 130 by SIGINT (Ctrl-C), 143 by SIGTERM (128 + the signal)",
]


def epilog(command: "str | None" = None) -> str:
    """The `exit codes:` block for one command's help (None: the top-level help, all of them)."""
    if command is None:
        lines = _ALL
    else:
        lines = _SPECIAL.get(command, [_OK, _USAGE, _INTERNAL, _CTRL_C])
    return "exit codes:\n" + "\n".join(lines) + "\n"
