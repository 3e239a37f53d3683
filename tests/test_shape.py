"""The package's shape: module sizes, function complexity, which package may import which,
type hints on public functions, test modules standing alone, comments about the project only.

These read the source (with ast) rather than run it, so they hold for every module, also
those no other test imports.
"""

import ast
import importlib.util
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

PROBE = os.path.join(ROOT, "probe")
TESTS = os.path.join(ROOT, "tests")
MAX_LINES = 400
MAX_TOP_LEVEL_MODULES = 8
MAX_COMPLEXITY = 10

# Which part of probe/ may import which. A part is a sub-package (engine, report...) or a
# top-level module (cli, api...); "probe" is the package's own __init__. Reading down the
# layers: commands -> render, gate, report -> attribution, mechanisms, policy -> engine ->
# platform. Imports inside one part are always allowed, and so are the BASE modules.
BASE = {"vocab", "errors"}
_PLATFORM = {"platform"}
_ENGINE = {"engine"} | _PLATFORM
_POLICY = {"policy"} | _ENGINE
_MECHANISMS = {"mechanisms"} | _POLICY
_ATTRIBUTION = {"attribution"} | _MECHANISMS
_REPORT = {"report", "probe"} | _ATTRIBUTION          # "probe" for __version__
_RENDER = {"render"} | _REPORT
_GATE = {"gate"} | _RENDER
_COMMANDS = {"commands"} | _GATE
ALLOWED_IMPORTS = {
    "vocab": set(),
    "errors": set(),
    "platform": set(),
    "engine": _PLATFORM,
    "policy": _ENGINE,
    "mechanisms": _POLICY,
    "attribution": _MECHANISMS,
    "report": _ATTRIBUTION | {"probe"},
    "render": _REPORT,
    "gate": _RENDER,
    "commands": _GATE,
    "api": _GATE,
    "probe": {"api"},
    "pytest_plugin": _GATE | {"api"},
    "cli": _COMMANDS,
    "__main__": {"cli"},
}
# The only module outside probe/commands/ that may import a command module.
COMMANDS_IMPORTED_BY = {"probe/cli.py"}


def python_files(top):
    found = []
    for folder, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", "fixtures"))
        found.extend(os.path.join(folder, name) for name in sorted(files) if name.endswith(".py"))
    return found


def rel(path):
    return os.path.relpath(path, ROOT).replace(os.sep, "/")


def parse(path):
    with open(path, encoding="utf-8") as source:
        return ast.parse(source.read(), filename=path)


PROBE_FILES = python_files(PROBE)


def module_name(path):
    parts = rel(path)[:-3].split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part_of(module):
    """'probe.report.load' -> 'report'; 'probe.cli' -> 'cli'; 'probe' -> 'probe'."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else pieces[0]


def _is_probe_module(dotted):
    base = os.path.join(ROOT, *dotted.split("."))
    return os.path.isdir(base) or os.path.isfile(base + ".py")


def imported_modules(path):
    """(line, module) for every probe module the file imports, at any depth (inside
    functions too); relative imports resolved."""
    package = module_name(path)
    if not path.endswith("__init__.py"):
        package = package.rpartition(".")[0]
    found = []
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                full = "%s.%s" % (base, alias.name)
                found.append((node.lineno, full if _is_probe_module(full) else base))
    return sorted((line, name) for line, name in found if name == "probe" or name.startswith("probe."))


# --------------------------------------------------------------------------- sizes

def test_no_module_over_the_line_limit():
    too_long = []
    for path in PROBE_FILES:
        with open(path, encoding="utf-8") as source:
            count = sum(1 for _ in source)
        if count > MAX_LINES:
            too_long.append("%s: %d lines" % (rel(path), count))
    assert not too_long, "modules over %d lines: %s" % (MAX_LINES, "; ".join(too_long))


def test_few_modules_at_the_top_level():
    top = sorted(name for name in os.listdir(PROBE) if name.endswith(".py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_complexity_check_runs_and_passes():
    """tools/check_complexity.py (also run by `tox -e lint`) on all of probe/."""
    if importlib.util.find_spec("radon") is None:
        pytest.skip("radon is not installed here (tox installs it)")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "check_complexity.py"),
                           "--max", str(MAX_COMPLEXITY), "probe"],
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_complexity_check_fails_on_a_complex_function(tmp_path):
    """The check must be able to fail: a function one decision point over the limit is refused."""
    if importlib.util.find_spec("radon") is None:
        pytest.skip("radon is not installed here (tox installs it)")
    body = "".join("    if x == %d:\n        return %d\n" % (i, i) for i in range(MAX_COMPLEXITY))
    (tmp_path / "knotty.py").write_text("def knotty(x):\n" + body + "    return -1\n")
    (tmp_path / "plain.py").write_text("def plain(x):\n" + body[: body.index("    if x == %d" % (MAX_COMPLEXITY - 1))]
                                       + "    return -1\n")
    cmd = [sys.executable, os.path.join(ROOT, "tools", "check_complexity.py"), "--max", str(MAX_COMPLEXITY)]
    failing = subprocess.run(cmd + [str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True)
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "knotty has cyclomatic complexity %d" % (MAX_COMPLEXITY + 1) in failing.stdout
    assert "plain" not in failing.stdout
    passing = subprocess.run(cmd + [str(tmp_path / "plain.py")], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, universal_newlines=True)
    assert passing.returncode == 0, passing.stdout + passing.stderr


# --------------------------------------------------------------------------- imports

def test_every_part_has_an_import_rule():
    parts = {part_of(module_name(path)) for path in PROBE_FILES}
    assert parts <= set(ALLOWED_IMPORTS) | BASE, sorted(parts - set(ALLOWED_IMPORTS))


def test_imports_point_one_way():
    wrong = []
    for path in PROBE_FILES:
        source = part_of(module_name(path))
        allowed = ALLOWED_IMPORTS.get(source, set()) | BASE | {source}
        for line, target in imported_modules(path):
            if part_of(target) not in allowed:
                wrong.append("%s:%d: %s imports %s" % (rel(path), line, source, target))
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_only_the_cli_imports_commands():
    wrong = []
    for path in PROBE_FILES:
        name = rel(path)
        if name.startswith("probe/commands/") or name in COMMANDS_IMPORTED_BY:
            continue
        for line, target in imported_modules(path):
            if part_of(target) == "commands":
                wrong.append("%s:%d imports %s" % (name, line, target))
        for node in ast.walk(parse(path)):  # importlib.import_module("probe.commands.x") too
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and re.match(r"probe\.commands\.\w+$", node.value):
                wrong.append("%s:%d names %s" % (name, node.lineno, node.value))
    assert not wrong, "\n".join(wrong)


def test_the_import_scan_sees_nested_and_relative_imports(tmp_path, monkeypatch):
    """The scanner itself: an import inside a function and a relative one both count."""
    package = tmp_path / "probe" / "engine"
    package.mkdir(parents=True)
    (tmp_path / "probe" / "__init__.py").write_text("")
    (tmp_path / "probe" / "report").mkdir()
    (tmp_path / "probe" / "report" / "load.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "x.py").write_text("def f():\n    from probe.report import load\n\nfrom .. import report\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", str(tmp_path))
    assert imported_modules(str(package / "x.py")) == [(2, "probe.report.load"), (4, "probe.report")]


# --------------------------------------------------------------------------- type hints

def _unannotated(function, in_class):
    args = function.args
    positional = list(getattr(args, "posonlyargs", [])) + list(args.args)
    is_static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in function.decorator_list)
    if in_class and not is_static and positional and positional[0].arg in ("self", "cls"):
        positional = positional[1:]
    params = positional + list(args.kwonlyargs) + [a for a in (args.vararg, args.kwarg) if a]
    missing = [a.arg for a in params if a.annotation is None]
    if function.returns is None:
        missing.append("return")
    return missing


def _module_level(body):
    """The statements of a module body, those under a module-level if/try included."""
    for node in body:
        yield node
        if isinstance(node, ast.If):
            yield from _module_level(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            branches = node.body + node.orelse + node.finalbody
            for handler in node.handlers:
                branches += handler.body
            yield from _module_level(branches)


def _public_functions(tree):
    """(function node, in a class) for module-level functions and the methods of module-level
    classes whose names do not start with '_'."""
    for node in _module_level(tree.body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
            yield node, False
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and not item.name.startswith("_"):
                    yield item, True


def test_public_functions_have_type_hints():
    missing = []
    for path in PROBE_FILES:
        for function, in_class in _public_functions(parse(path)):
            names = _unannotated(function, in_class)
            if names:
                missing.append("%s:%d: %s (%s)" % (rel(path), function.lineno, function.name, ", ".join(names)))
    assert not missing, "public functions without type hints:\n" + "\n".join(missing)


# --------------------------------------------------------------------------- tests

TEST_FILES = python_files(TESTS)


def test_no_test_module_imports_another():
    test_modules = {os.path.basename(p)[:-3] for p in TEST_FILES if os.path.basename(p).startswith("test_")}
    wrong = []
    for path in TEST_FILES:
        for node in ast.walk(parse(path)):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            for name in names:
                last = name.split(".")[-1]
                if last in test_modules or name.split(".")[0] in test_modules:
                    wrong.append("%s:%d imports %s" % (rel(path), node.lineno, name))
    assert not wrong, "import shared code from tests/helpers/ instead:\n" + "\n".join(wrong)


def test_fuzz_tests_are_marked_slow():
    """Every hypothesis test carries the `slow` marker, so `-m "not slow"` is a quick run."""
    unmarked = []
    for path in TEST_FILES:
        tree = parse(path)
        module_marked = any(isinstance(node, ast.Assign) and "pytestmark" in ast.dump(node)
                            and "slow" in ast.dump(node) for node in tree.body)
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef):
                continue
            decorators = [ast.dump(d) for d in node.decorator_list]
            if any("'given'" in d for d in decorators) and not module_marked \
                    and not any("'slow'" in d for d in decorators):
                unmarked.append("%s:%d: %s" % (rel(path), node.lineno, node.name))
    assert not unmarked, "hypothesis tests without @pytest.mark.slow:\n" + "\n".join(unmarked)


# --------------------------------------------------------------------------- comments

# Comments speak of the project alone: no tracker numbers, no people, no notes kept
# outside the repository. Built from pieces so this file does not match itself.
FOREIGN_WORDS = re.compile("|".join((r"\bissues? #?\d+", r"\bthe " + r"lead\b", r"\bshared" + "/",
                                     "/wo" + r"rk/(shared|brief)\b")), re.IGNORECASE)


def _project_text_files():
    found = []
    for top in ("probe", "tests", "tools", "benchmarks", ".ci", ".github"):
        for folder, dirs, files in os.walk(os.path.join(ROOT, top)):
            dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", "fixtures"))
            found.extend(os.path.join(folder, name) for name in sorted(files)
                         if not name.endswith((".pyc", ".json", ".yaml")))
    return found + [os.path.join(ROOT, name) for name in ("tox.ini", "setup.cfg", "pyproject.toml", "action.yml")]


def test_comments_speak_of_the_project_only():
    found = []
    for path in _project_text_files():
        try:
            with open(path, encoding="utf-8") as source:
                lines = source.readlines()
        except (UnicodeDecodeError, FileNotFoundError):
            continue
        for number, line in enumerate(lines, 1):
            if FOREIGN_WORDS.search(line):
                found.append("%s:%d: %s" % (rel(path), number, line.strip()[:100]))
    assert not found, "\n".join(found)
