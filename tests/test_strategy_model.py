"""The strategy model against real runtimes on the real kernel: V8's RW->RWX flip, what a
debugger does, what a seccomp kill action does to a runtime that tries and falls back,
and the flip-cycle count the README states."""

import os
import re
import shutil
import signal
import subprocess
import sys

import pytest

from probe.engine import probes as _probes
from probe.attribution.strategies import STRATEGIES
from probe.attribution.summary import NAMES, PROTECTIONS

from conftest import CONFINE, ROOT, UNAVAILABLE

EXAMPLES = {name: examples for name, _, examples, _ in STRATEGIES}


def confined(options, command, timeout=60):
    """CompletedProcess of `command` under tests/helpers/confine.py OPTIONS; skip where the
    kernel lacks the confinement."""
    proc = subprocess.run([sys.executable, CONFINE] + list(options) + ["--"] + command,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode == UNAVAILABLE:
        pytest.skip(proc.stderr.strip())
    return proc


# --- V8 flips RW->RWX: the rwx_flip strategy ---------------------------------------------------

def test_rwx_flip_is_its_own_strategy_for_v8_and_wx_flip_is_not_v8():
    assert any("V8" in e for e in EXAMPLES["rwx_flip"])
    assert not any("V8" in e for e in EXAMPLES["wx_flip"])
    assert set(EXAMPLES["wx_flip"]) == {"LuaJIT", "SpiderMonkey", "Wasmtime"}
    assert next(ids for name, ids, _, _ in STRATEGIES if name == "rwx_flip") == ("flip_rw_rwx",)


def test_rwx_flip_verdicts_on_the_real_kernel(reports):
    assert reports.get("plain")["strategies"]["rwx_flip"]["verdict"] == "works"
    for name, mechanism in (("mdwe", "mdwe"), ("seccomp", "seccomp"), ("seccomp-kill", "seccomp")):
        entry = reports.get(name)["strategies"]["rwx_flip"]
        assert (entry["verdict"], entry["blocked_by"]) == ("blocked", [mechanism]), name


@pytest.mark.skipif(not (shutil.which("node") and shutil.which("strace")),
                    reason="needs node and strace installed")
def test_node_makes_its_code_pages_rwx_not_rx(tmp_path):
    options = subprocess.run(["node", "--v8-options"], capture_output=True, text=True, timeout=60)
    if "--write-code-using-rwx" not in options.stdout:
        pytest.skip("this node's V8 has no --write-code-using-rwx")
    trace = tmp_path / "trace"
    proc = subprocess.run(["strace", "-f", "-e", "trace=mprotect", "-o", str(trace), "node", "-e",
                           "let s = 0; for (let i = 0; i < 1e6; i++) s += i; console.log(s)"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "499999500000", proc.stderr
    calls = trace.read_text()
    assert re.search(r"mprotect\(.*PROT_READ\|PROT_WRITE\|PROT_EXEC\) = 0", calls)
    assert not re.search(r"mprotect\(.*, PROT_READ\|PROT_EXEC\)", calls)   # never a W^X flip


# --- debuggers are not an mprotect strategy ------------------------------------------------------

def test_no_strategy_or_summary_names_debugger_breakpoints():
    texts = [e for examples in EXAMPLES.values() for e in examples]
    texts += list(NAMES.values()) + list(PROTECTIONS.values()) + [p.description for p in _probes.REGISTRY]
    for text in texts:
        assert "debugger" not in text.lower() and "breakpoint" not in text.lower(), text
    assert "in-process hot patching" in EXAMPLES["code_repatching"]
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    row = next(line for line in readme.splitlines() if line.startswith("| `code_repatching` |"))
    assert "hot patching" in row and "debugger" not in row


@pytest.mark.skipif(not shutil.which("gdb"), reason="needs gdb installed")
@pytest.mark.parametrize("options", [["--mdwe"], ["--seccomp", "errno"], ["--seccomp", "kill"]],
                         ids=["mdwe", "seccomp-errno", "seccomp-kill"])
def test_gdb_breakpoints_work_where_file_text_patching_is_blocked(reports, options):
    true = shutil.which("true")
    proc = confined(options, ["gdb", "-nx", "-batch", "-ex", "break exit", "-ex", "run", "--args", true])
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^Breakpoint 1, .*exit", proc.stdout, re.M), proc.stdout
    name = {"--mdwe": "mdwe", "errno": "seccomp", "kill": "seccomp-kill"}[options[-1]]
    assert reports.get(name)["summary"]["file_text_patching"]["state"] == "blocked"


# --- a seccomp kill action: trying a blocked strategy kills -------------------------------------

# Prints how libffi made the closure, then the callback's result. A libffi with static
# trampolines maps them from its own shared object, which it keeps open: no W|X memory at all.
CTYPES_CALLBACK = ("import ctypes, os\n"
                   "callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(lambda x: x + 19)\n"
                   "def link(n):\n"
                   "    try:\n"
                   "        return os.readlink('/proc/self/fd/' + n)\n"
                   "    except OSError:\n"
                   "        return ''\n"   # the descriptor listdir() itself used
                   "fds = [link(n) for n in os.listdir('/proc/self/fd')]\n"
                   "print('static' if any('libffi' in f for f in fds) else 'writable')\n"
                   "print(callback(4))\n")


def test_ctypes_callbacks_die_under_the_kill_filter_and_work_under_the_errno_filter():
    # libffi without static trampolines tries an RWX mapping first and falls back; the kill
    # action leaves no fallback. With static trampolines (newer libffi) it needs no W|X memory.
    errno_run = confined(["--seccomp", "errno"], [sys.executable, "-c", CTYPES_CALLBACK])
    assert errno_run.returncode == 0 and errno_run.stdout.split()[-1] == "23", errno_run
    kill_run = confined(["--seccomp", "kill"], [sys.executable, "-c", CTYPES_CALLBACK])
    if kill_run.returncode == 0:
        assert kill_run.stdout.split() == ["static", "23"], kill_run
    else:
        assert kill_run.returncode in (-signal.SIGSYS, 128 + signal.SIGSYS), kill_run
        assert kill_run.stdout == ""


def test_kill_filter_recommendation_warns_and_names_the_strategy_to_start_with(reports):
    text = reports.get("seccomp-kill")["recommendation"]
    assert "kills the process with SIGSYS" in text
    assert "as libffi does for ctypes callbacks, dies here" in text
    assert "use double mapping (an RW view and an RX view) from the start" in text
    for name in ("seccomp", "mdwe", "plain"):
        assert "SIGSYS" not in reports.get(name)["recommendation"], name


def test_kill_warning_without_any_working_strategy():
    from probe.attribution.attribute import attribute
    from helpers.policy_samples import expand
    r = {"host": {"os": "linux"}, "process": {"seccomp_mode": 2},
         "probes": {"flip_rw_rx": expand("flip_rw_rx", "crashed mprotect_rx SIGSYS"),
                    "map_rwx": expand("map_rwx", "crashed mmap_rwx SIGSYS"),
                    "dual_map_memfd": expand("dual_map_memfd", "crashed mmap_rx_view SIGSYS")}}
    attribute(r)
    assert "(3 probes died of it)" in r["recommendation"]
    assert r["recommendation"].endswith("no strategy is safe to try.")


# --- flip cycles: one number, in the code and the README ----------------------------------------

def test_readme_states_the_flip_cycles_the_code_runs(reports):
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = " ".join(f.read().split())
    stated = re.search(r"median ns over ([\d,]+) cycles", readme)
    assert stated and int(stated.group(1).replace(",", "")) == _probes.FLIP_CYCLES
    assert reports.get("plain")["measurements"]["flip_cycle_ns"]["cycles"] == _probes.FLIP_CYCLES
