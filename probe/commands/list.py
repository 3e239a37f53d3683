"""`memprobe list`: the probe ids with one-line descriptions."""


def add_arguments(parser):
    pass


def main(args):
    from probe.report import output as _output
    from probe.engine import probes as _probes
    width = max(len(p.id) for p in _probes.REGISTRY)
    _output.write_stdout(["%-*s  %s\n" % (width, p.id, p.description) for p in _probes.REGISTRY])
    return 0
