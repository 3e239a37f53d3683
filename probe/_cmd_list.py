"""`memprobe list`: the probe ids with one-line descriptions."""

import sys


def add_arguments(parser):
    pass


def main(args):
    from probe import _probes
    width = max(len(p.id) for p in _probes.REGISTRY)
    for p in _probes.REGISTRY:
        sys.stdout.write("%-*s  %s\n" % (width, p.id, p.description))
    return 0
