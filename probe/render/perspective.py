"""Whose point of view a rendering takes, and the option that chooses it.

Its own module, so that `memprobe run` declares the option without loading the renderers.
"""

import argparse

# Whoever hardens a host reads the same words the other way round: a strategy that
# works is an opening, one that is blocked (or whose probe was killed) is the defence holding.
PERSPECTIVES = ("jit", "hardening")


def add_perspective_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--perspective", choices=PERSPECTIVES, default="jit",
                        help="whose point of view the colours take: jit (default: a strategy that "
                        "works is green) or hardening (a strategy that is blocked is green)")
