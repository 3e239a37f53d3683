"""`memprobe list`: the probe ids with one-line descriptions."""

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def main(args: argparse.Namespace) -> int:
    from probe.report import output as _output
    from probe.engine import probes as _probes
    width = max(len(p.id) for p in _probes.REGISTRY)
    _output.write_stdout(["%-*s  %s\n" % (width, p.id, p.description) for p in _probes.REGISTRY])
    return 0
