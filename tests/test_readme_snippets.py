"""Every Python and shell snippet of README.md parses, as the YAML ones do in test_ci_files."""

import ast
import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT

_BLOCK = re.compile(r"^```(python|sh)\n(.*?)^```$", re.S | re.M)


def readme_blocks(language):
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    return [(text.count("\n", 0, m.start()) + 2, m.group(2)) for m in _BLOCK.finditer(text)
            if m.group(1) == language]


def test_python_snippets_parse():
    blocks = readme_blocks("python")
    assert blocks, "the README shows the pytest plugin and the API in python blocks"
    for line, text in blocks:
        try:
            ast.parse(text)
        except SyntaxError as error:
            pytest.fail("README.md line %d: python block does not parse: %s"
                        % (line + (error.lineno or 1) - 1, error.msg))


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_shell_snippets_parse():
    blocks = readme_blocks("sh")
    assert len(blocks) >= 2, "the quick start's two commands are sh blocks"
    for line, text in blocks:
        proc = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True)
        assert proc.returncode == 0, "README.md line %d: sh block does not parse: %s" % (line, proc.stderr)

