"""`memprobe completion SHELL`: print a completion script for bash, zsh or fish."""

from probe.render.completion import SHELLS, script
from probe.report import output as _output


def add_arguments(parser):
    parser.add_argument("shell", choices=sorted(SHELLS), help="the shell to complete for")


def main(args):
    # The whole parser, every command's options included, as the command line builds it.
    _output.write_stdout(script(args.shell, args.full_parser()))
    return 0
