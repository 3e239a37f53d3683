"""The hidden `_worker` command: the CLI re-runs itself as one isolated probe child
(`--isolation spawn`); the work is probe.engine.worker's."""

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--arch", default="")


def main(args: argparse.Namespace) -> int:
    from probe.engine.worker import child_main

    child_main(args.task, args.fd, args.arch or None)
