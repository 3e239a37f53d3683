"""`memprobe capture-fixture DIR`: copy this host's policy sources into a fixture tree
(what the tree holds, and what to review before sharing it: probe/mechanisms/_capture.py).
"""

import argparse
import os
import sys

from probe.errors import InputError
from probe.mechanisms._capture import capture


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", help="fixture directory to create, e.g. tests/fixtures/linux-myhost")
    parser.add_argument("--description", default="", help="one line saying what this host is")
    parser.add_argument("--force", action="store_true", help="write into an existing directory")


def main(args: argparse.Namespace) -> int:
    target = args.directory
    if os.path.exists(target) and os.listdir(target) and not args.force:
        raise InputError("%s exists and is not empty (use --force to write into it)" % target)
    differences = capture(target, args.description)
    sys.stderr.write("memprobe: fixture written to %s\n" % target)
    if differences:
        sys.stderr.write("memprobe: the tree does not reproduce every live detector result:\n")
        for line in differences:
            sys.stderr.write("  %s\n" % line)
    return 0
