"""Reports for the collector tests.

The base of everything is a real report: `memprobe run` on this machine, plain,
under PR_SET_MDWE and under the systemd-style seccomp filter (tests/helpers/confine.py
via the session-scoped `reports` fixture of conftest.py). Other hosts, repeated
runs and odd outcomes are made by editing a copy of a real report and
re-deriving its summary with the engine's own summarise(), so every sample
stays valid against the current schema.
"""

import copy
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFINED = ("plain", "mdwe", "seccomp")


class Real:
    """Real reports of this machine, as loaded dicts and as YAML / JSON files."""

    def __init__(self, reports, directory):
        self.reports = reports
        self.directory = directory

    def doc(self, name):
        return copy.deepcopy(self.reports.get(name))

    def json(self, name):
        return self.reports.path(name)

    def yaml(self, name):
        """The same report as `memprobe run --format yaml` writes it (the engine's serialiser)."""
        from probe.report import build as _report

        path = os.path.join(self.directory, "%s.yaml" % name)
        if not os.path.exists(path):
            with open(path, "w", encoding="utf-8") as f:
                f.write(_report.dumps(self.reports.get(name), "yaml"))
        return path


@pytest.fixture(scope="session")
def real(reports, tmp_path_factory):
    return Real(reports, str(tmp_path_factory.mktemp("collect-real")))


@pytest.fixture(scope="session")
def real_yaml_run(tmp_path_factory):
    """One report written directly by `memprobe run --format yaml` (no conversion)."""
    path = str(tmp_path_factory.mktemp("collect-run") / "run.yaml")
    proc = subprocess.run([sys.executable, "-m", "probe", "run", "--format", "yaml", "--output", path, "--quiet"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 0, proc.stderr
    return path


# --------------------------------------------------------------------------- variations

def variant(base, hostname=None, os_name=None, arch=None, kernel=None, generated_at=None, euid=None,
            outcomes=None, emulator=None):
    """A copy of a real report as if from another host / run; summary re-derived."""
    from probe.report import build as _report

    report = copy.deepcopy(base)
    host = report["host"]
    if hostname is not None:
        host["hostname"] = hostname
    if os_name is not None:
        host["os"] = os_name
    if arch is not None:
        host["arch"] = host["machine"] = arch
    if kernel is not None:
        host["kernel_release"] = kernel
    if emulator is not None:
        host["provenance"] = {"method": "qemu-user", "emulator": emulator}
    if generated_at is not None:
        report["generated_at"] = generated_at
    if euid is not None:
        report["process"]["uid"] = report["process"]["euid"] = euid
    for pid, change in (outcomes or {}).items():
        result = report["probes"][pid]
        outcome = change[0]
        result.update(outcome=outcome, errno_name=None, errno=None, signal=None, signal_number=None)
        if outcome == "denied":
            result.update(errno_name=change[1], errno={"EACCES": 13, "EPERM": 1}.get(change[1], 1))
        elif outcome in ("crashed", "killed"):
            result.update(signal=change[1], signal_number={"SIGSEGV": 11, "SIGKILL": 9, "SIGSYS": 31}[change[1]])
        elif outcome == "wrong_result":
            result["value"] = 0
        if outcome != "allowed":
            result["value"] = 0 if outcome == "wrong_result" else None
        result["detail"] = "%s (test variation)" % outcome
    report["summary"] = _report.summarise(report["probes"])
    return report


def with_attribution(report):
    """The report as the attribution pass leaves it (per-probe attribution, strategies,
    recommendation), recomputed from the report alone."""
    from probe.attribution import attribute as _attribution
    report = copy.deepcopy(report)
    _attribution.attribute(report)
    return report


def dump_yaml(report):
    return yaml.safe_dump(report, sort_keys=False, default_flow_style=False, allow_unicode=True)


def dump_json(report):
    return json.dumps(report, indent=2)


def write(directory, name, report, fmt=None):
    path = os.path.join(str(directory), name)
    fmt = fmt or ("json" if name.endswith(".json") else "yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(dump_json(report) if fmt == "json" else dump_yaml(report))
    return path


def write_bytes(directory, name, data):
    path = os.path.join(str(directory), name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def cli(*args, env=None):
    """Run the real CLI in a child: (exit status, stdout, stderr)."""
    full_env = dict(os.environ, PYTHONPATH=ROOT)
    full_env.pop("NO_COLOR", None)
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "probe"] + [str(a) for a in args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=full_env)
    return proc.returncode, proc.stdout, proc.stderr


def chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


# A handful of hostile documents every loader path must refuse cleanly.
HOSTILE = {
    "python-object": b"schema_version: 1\nhost: !!python/object/apply:os.system ['echo pwned']\n",
    "python-name": b"schema_version: 1\nx: !!python/name:os.system\n",
    "local-tag": b"schema_version: 1\nx: !evil {a: 1}\n",
    "binary": b"schema_version: 1\nx: !!binary aGVsbG8=\n",
    "set": b"schema_version: 1\nx: !!set {a, b}\n",
    "billion-laughs": (b"a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"
                       + b"".join(b"%s: &%s [%s]\n" % (chr(98 + i).encode(), chr(98 + i).encode(),
                                                        b",".join([b"*" + chr(97 + i).encode()] * 9))
                                   for i in range(8))),
    "recursive-alias": b"a: &a [*a]\n",
    "merge-key": b"base: {schema_version: 1}\nreport:\n  <<: {schema_version: 1}\n",
    "deep-flow": b"[" * 200000 + b"]" * 200000,
    "deep-block": b"- " * 100000 + b"x\n",
    "deep-json": b'{"a":' * 100000 + b"1" + b"}" * 100000,
    "nan": b"schema_version: .nan\n",
    "huge-int": b"schema_version: " + b"9" * 10000 + b"\n",
    "dup-key": b"schema_version: 1\nschema_version: 2\n",
    "int-key": b"1: a\n",
    "list-doc": b"- 1\n- 2\n",
    "scalar-doc": b"just text\n",
    "empty": b"",
    "null-doc": b"~\n",
    "two-docs": b"schema_version: 1\n---\nschema_version: 1\n",
    "binary-garbage": bytes(range(256)) * 4,
    "latin1": "schema_version: 1\nhost: {hostname: caf\u00e9}\n".encode("latin-1"),
    "utf16": "schema_version: 1\n".encode("utf-16"),
    "nul": b"schema_version: 1\x00\n",
    "escape": b"schema_version: 1\nhost: {hostname: \"\\e[31mred\\e[0m\"}\n",
    "truncated": b"schema_version: 1\nhost:\n  os: linux\n  hostname: 'vm\n",
    "unknown-version": b"schema_version: 99\n",
    "string-version": b"schema_version: '1'\n",
    "bool-version": b"schema_version: true\n",
    "json-broken": b'{"schema_version": 1, "host": ',
}
