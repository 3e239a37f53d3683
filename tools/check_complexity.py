"""Fail when a function or method is more complex than the project allows.

`radon cc` lists complexities but always exits 0; this reads the same figures
through radon's API and exits 1, naming each function over the limit.

    python tools/check_complexity.py [--max 10] [PATH ...]    (default PATH: probe)
"""

import argparse
import os
import sys

from radon.complexity import cc_visit
from radon.visitors import Function

DEFAULT_MAX = 10


def python_files(paths):
    """Every .py file under the given files and directories, sorted."""
    found = []
    for path in paths:
        if os.path.isfile(path):
            found.append(path)
            continue
        for folder, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            found.extend(os.path.join(folder, name) for name in files if name.endswith(".py"))
    return sorted(found)


def _functions(blocks):
    """Functions, methods and their closures; classes themselves have no single figure to limit."""
    for block in blocks:
        if isinstance(block, Function):
            yield block
            yield from _functions(block.closures)


def violations(paths, limit=DEFAULT_MAX):
    """(file, line, name, complexity) for every function over limit."""
    found = []
    for path in python_files(paths):
        with open(path, encoding="utf-8") as source:
            blocks = cc_visit(source.read())
        for function in _functions(blocks):
            if function.complexity > limit:
                found.append((path, function.lineno, function.fullname, function.complexity))
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=DEFAULT_MAX, help="highest complexity allowed (%(default)s)")
    parser.add_argument("paths", nargs="*", default=["probe"])
    args = parser.parse_args(argv)
    found = violations(args.paths, args.max)
    for path, line, name, complexity in found:
        print("%s:%d: %s has cyclomatic complexity %d, above %d" % (path, line, name, complexity, args.max))
    if found:
        print("%d function(s) over complexity %d: split them" % (len(found), args.max), file=sys.stderr)
        return 1
    print("no function in %s over complexity %d" % (", ".join(args.paths), args.max))
    return 0


if __name__ == "__main__":
    sys.exit(main())
