"""Lint every GitHub Actions file of the project: `tox -e lint` runs this.

    python tools/lint_workflows.py WORKDIR

- actionlint (with shellcheck on every `run:` script) on .github/workflows/*.yml, on the
  steps of action.yml (wrapped in a reusable workflow whose inputs are the action's, since
  actionlint reads only workflows) and on every complete workflow in README.md;
- zizmor --offline --min-severity medium on the workflows, action.yml and the README's
  workflows;
- shellcheck on the shell scripts the workflows call (tools/ci/*.sh).

Generated files go to WORKDIR. Exit status: 0 when every linter is clean, else 1.
"""

import glob
import os
import re
import subprocess
import sys
from typing import List, Tuple

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_FENCE = re.compile(r"^```yaml[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)


def yaml_blocks(markdown: str) -> List[Tuple[int, str]]:
    """(line number, text) of every ```yaml block of a Markdown document."""
    return [(markdown.count("\n", 0, match.start()) + 2, match.group(1))
            for match in _FENCE.finditer(markdown)]


def readme_workflows(markdown: str) -> List[Tuple[int, str]]:
    """The README's yaml blocks that are whole workflows (they have `on` and `jobs`)."""
    found = []
    for line, text in yaml_blocks(markdown):
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise SystemExit("README.md line %d: yaml block does not parse: %s"
                             % (line, str(error).splitlines()[0]))
        # PyYAML reads the key `on` as the boolean True (YAML 1.1).
        if isinstance(doc, dict) and "jobs" in doc and (True in doc or "on" in doc):
            found.append((line, text))
    return found


def action_as_workflow(action: dict) -> dict:
    """A reusable workflow running the composite action's steps, for actionlint."""
    inputs = {name: {"type": "string", "required": False, "default": str(spec.get("default", ""))}
              for name, spec in (action.get("inputs") or {}).items()}
    return {
        "name": "action.yml steps",
        "on": {"workflow_call": {"inputs": inputs}},
        "permissions": {},
        "jobs": {"action": {"runs-on": "ubuntu-24.04", "steps": action["runs"]["steps"]}},
    }


def generate(workdir: str) -> List[str]:
    """Write the README's workflows and the wrapped action into workdir; their paths."""
    os.makedirs(workdir, exist_ok=True)
    paths = []
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        for line, text in readme_workflows(f.read()):
            path = os.path.join(workdir, "readme-line-%d.yml" % line)
            with open(path, "w", encoding="utf-8") as out:
                out.write(text)
            paths.append(path)
    with open(os.path.join(ROOT, "action.yml"), encoding="utf-8") as f:
        wrapped = action_as_workflow(yaml.safe_load(f))
    path = os.path.join(workdir, "action-steps.yml")
    with open(path, "w", encoding="utf-8") as out:
        yaml.safe_dump(wrapped, out, sort_keys=False)
    paths.append(path)
    return paths


def run(command: List[str]) -> bool:
    print("+ " + " ".join(command), flush=True)
    return subprocess.call(command, cwd=ROOT) == 0


def main(argv: List[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: lint_workflows.py WORKDIR\n")
        return 1
    generated = generate(os.path.abspath(argv[0]))
    workflows = sorted(glob.glob(os.path.join(ROOT, ".github", "workflows", "*.yml")))
    readme = [path for path in generated if os.path.basename(path).startswith("readme-")]
    scripts = sorted(glob.glob(os.path.join(ROOT, "tools", "ci", "*.sh")))
    results = [
        run(["actionlint"] + workflows + generated),
        run(["zizmor", "--offline", "--min-severity", "medium"]
            + workflows + [os.path.join(ROOT, "action.yml")] + readme),
        run(["shellcheck"] + scripts),
    ]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
