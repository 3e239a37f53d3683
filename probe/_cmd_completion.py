"""`memprobe completion SHELL`: print a completion script for bash, zsh or fish."""

from probe import _output
from probe._completion import SHELLS, script


def add_arguments(parser):
    parser.add_argument("shell", choices=sorted(SHELLS), help="the shell to complete for")


def main(args):
    _output.write_stdout(script(args.shell))
    return 0
