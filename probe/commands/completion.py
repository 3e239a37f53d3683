"""`memprobe completion SHELL`: print a completion script for bash, zsh or fish."""

from probe.render.completion import SHELLS, script
from probe.report import output as _output


def add_arguments(parser):
    parser.add_argument("shell", choices=sorted(SHELLS), help="the shell to complete for")


def main(args):
    _output.write_stdout(script(args.shell))
    return 0
