"""memprobe under other CPUs: qemu-user guests and natively loaded i386/Debian interpreters.

Driven by `tox -e cross`, which builds the rig (tools/cross/rig.py) and points
MEMPROBE_CROSS_CACHE at it; elsewhere every test here skips.
"""

import importlib.util
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP_REASON = "cross rig not built (run tox -e cross)"


def _load_rig():
    spec = importlib.util.spec_from_file_location("memprobe_cross_rig",
                                                  os.path.join(ROOT, "tools", "cross", "rig.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rig = _load_rig()
CACHE = os.environ.get("MEMPROBE_CROSS_CACHE")
ALL = rig.FOREIGN + rig.NATIVE_DEBIAN
EMULATED = [t for t in ALL if rig.TARGETS[t].emulated]

pytestmark = pytest.mark.skipif(not CACHE, reason=SKIP_REASON)


@pytest.fixture(scope="module")
def runs():
    return {}


def rigged(name):
    target = rig.TARGETS[name]
    r = rig.Rig(CACHE)
    # Inside the cross env the rig was just built: a missing root is a failure of the
    # setup step, not a reason to skip.
    assert r.ready(target), "%s is not built in %s (rig.py setup %s)" % (name, CACHE, name)
    return rig.Rigged(r, target)


def fork_report(runs, name):
    if name not in runs:
        report, proc = rigged(name).memprobe([])
        assert report is not None, proc.stderr
        runs[name] = report
    return runs[name]


@pytest.mark.parametrize("name", ALL)
def test_guest_test_subset_passes(name):
    proc = rigged(name).pytest([], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout


@pytest.mark.parametrize("name", ALL)
def test_full_run_has_the_expected_verdicts(runs, name):
    report = fork_report(runs, name)
    assert rig.verify(report, rig.TARGETS[name]) == []
    # every probe ran to a verdict: no probe errored or was skipped for lack of an arch entry
    bad = {k: v["detail"] for k, v in report["probes"].items() if v["outcome"] in ("error", "wrong_result")}
    assert bad == {}


@pytest.mark.parametrize("name", ALL)
def test_report_is_valid_against_the_schema(runs, name):
    from probe.report import validator as _schema
    assert _schema.validate(fork_report(runs, name)) == []


def test_i386_names_its_own_arch_on_an_x86_64_kernel(runs):
    host = fork_report(runs, "i386")["host"]
    assert (host["machine"], host["arch"], host["pointer_bits"]) == ("x86_64", "i386", 32)


@pytest.mark.parametrize("name", ALL)
def test_spawn_isolation_with_the_rig_interpreter(name):
    report, proc = rigged(name).memprobe(["--isolation", "spawn", "--only"] + list(rig.EXPECTED))
    assert report is not None, proc.stderr
    assert report["process"]["isolation"] == "spawn"
    assert rig.verify(report, rig.TARGETS[name], only=list(rig.EXPECTED)) == []


@pytest.mark.parametrize("name", [t for t in ALL if rig.TARGETS[t].emulated or t == "i386"])
def test_spawn_isolation_without_a_hint_works(name, tmp_path):
    # Nobody told memprobe how to start a guest interpreter (the guest cannot exec
    # sys.executable): it finds the emulator's (or the loader's) command line itself.
    out = str(tmp_path / "spawn.json")
    proc = rigged(name).run(["-m", "probe", "run", "--isolation", "spawn", "--only"]
                            + list(rig.EXPECTED) + ["--format", "json", "--output", out, "--quiet"],
                            env={"MEMPROBE_INTERPRETER": ""}, capture_output=True, text=True,
                            timeout=300)
    assert proc.returncode == 0, proc.stderr
    with open(out) as f:
        report = json.load(f)
    assert report["process"]["isolation"] == "spawn"
    assert rig.verify(report, rig.TARGETS[name], only=list(rig.EXPECTED)) == []


@pytest.mark.parametrize("name", EMULATED)
def test_provenance_names_the_emulator_without_a_hint(name):
    # The rig says MEMPROBE_PROVENANCE; a user running memprobe under qemu does not.
    proc = rigged(name).run(["-m", "probe", "run", "--only", "map_rx", "--format", "json", "--output", "-"],
                 env={"MEMPROBE_PROVENANCE": ""}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    prov = json.loads(proc.stdout)["host"]["provenance"]
    want = rig.TARGETS[name].qemu.replace("-static", "")
    assert prov["method"] == "qemu-user"
    assert (prov["emulator"] or "").startswith(want + " "), prov


def test_thumb_code_runs_on_armhf():
    report, proc = rigged("armhf").memprobe(["--arm-mode", "thumb"])
    assert report is not None, proc.stderr
    assert report["host"]["arch"] == "arm-thumb"
    assert rig.verify(report, rig.TARGETS["armhf"], arm_mode="thumb") == []
    assert report["probes"]["patch_rwx"]["value"] == 42


@pytest.mark.parametrize("name", EMULATED)
def test_guest_sees_its_own_cpu(name):
    proc = rigged(name).run(["-c", "import platform, struct; print(platform.machine(), "
                                   "struct.calcsize('P') * 8)"],
                            capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    machine, bits = proc.stdout.split()
    assert int(bits) == rig.TARGET_SHAPE[name][0]
    assert machine != "x86_64"
