"""Every mechanism module is found by the registry and declares what attribution needs:
a detector, a rule, a status reading, the OSes it acts on and (where there is one) a fix
hint. A module dropped into probe/mechanisms/ is registered without editing anything else."""

import os
import pkgutil
import subprocess
import sys

import pytest

import probe.mechanisms as registry
from probe.mechanisms import ANY_OS, MECHANISMS, MODULES
from probe.policy import Detector

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMED = ("pax", "selinux", "seccomp", "mdwe", "memfd_noexec", "noexec_mounts", "nx",
         "freebsd_wx", "hardenedbsd", "netbsd_pax", "openbsd_wx")


def test_registry_holds_every_module_of_the_package():
    on_disk = {m.name for m in pkgutil.iter_modules(registry.__path__) if not m.name.startswith("_")}
    assert set(registry.MODULE_NAMES) == on_disk
    assert set(NAMED) <= on_disk


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_module_declares_detector_rule_hint_and_oses(module):
    assert module.MECHANISMS and all(isinstance(t, str) and t for t in module.MECHANISMS.values())
    assert isinstance(module.DETECTOR, type) and issubclass(module.DETECTOR, Detector)
    assert module.DETECTOR.name and module.DETECTOR.oses and module.DETECTOR.order
    assert callable(module.rules) and callable(module.status)
    assert module.OSES == ANY_OS or (module.OSES and all(isinstance(o, str) for o in module.OSES))
    assert set(module.FIX_HINTS) <= set(module.MECHANISMS)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_module_status_answers_for_an_empty_report(module):
    facts = registry.Facts({})
    op = registry.Op("flip_rw_rx", {"step": "mprotect_rx"})
    for mech in module.MECHANISMS:
        state, evidence = registry.status_of(mech, facts, op)
        assert state in (registry.ACTIVE, registry.INACTIVE, registry.UNSURE)
        assert isinstance(evidence, str)


def test_tables_are_built_from_the_modules():
    names = [m for module in MODULES for m in module.MECHANISMS]
    assert len(names) == len(set(names)), "two modules claim one mechanism"
    assert set(MECHANISMS) == set(names) | {"unknown"}
    assert set(registry.MECH_OSES) == set(names)
    detectors = [d.name for d in registry.DETECTORS]
    assert len(detectors) == len(set(detectors))
    for module in MODULES:
        assert module.DETECTOR.name in detectors


def test_detector_order_is_the_report_order():
    assert [d.name for d in registry.DETECTORS] == [
        "cpu_nx", "pax", "selinux", "seccomp", "mdwe", "personality", "memfd_noexec",
        "kernel_config", "freebsd_wx", "hardenedbsd", "netbsd_pax", "openbsd_wx", "noexec_mounts"]


DROPPED_IN = '''
from probe.mechanisms._base import ACTIVE, ANY_OS
from probe.policy import Detector

MECHANISMS = {"zz-test": "a mechanism dropped into the package"}
OSES = ANY_OS
FIX_HINTS = {"zz-test": "remove the test module"}


class ZZ(Detector):
    name = "zz_test"
    title = "dropped-in detector"
    oses = ("linux",)
    order = 999

    def read(self, src):
        return {"state": "on"}


DETECTOR = ZZ


def status(mech, f, op):
    return ACTIVE, "the dropped-in detector says so"


def rules(obs, op, f):
    if obs.denied and obs.err == "EXDEV":
        return [(0, "zz-test", "refused with EXDEV")]
    return []
'''


def test_a_module_dropped_into_the_package_is_found(tmp_path):
    """A copy of the package plus one new module: registry, detect() and attribution see
    the new mechanism with no other file edited."""
    import shutil
    copy = tmp_path / "probe"
    shutil.copytree(os.path.join(ROOT, "probe"), copy,
                    ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "mechanisms" / "zz_test.py").write_text(DROPPED_IN)
    code = ("import json, probe.mechanisms as m\n"
            "from probe.attribution.attribute import attribute\n"
            "assert m.__file__.startswith(%r), m.__file__\n"
            "r = {'host': {'os': 'linux'}, 'policies': {}, 'probes': {'map_rx': "
            "{'outcome': 'denied', 'errno_name': 'EXDEV', 'step': 'mmap_rx'}}}\n"
            "attribute(r)\n"
            "print(json.dumps([m.MODULE_NAMES, m.FIX_HINTS.get('zz-test'), "
            "list(m.detect()), r['probes']['map_rx']['attribution']]))\n" % str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), capture_output=True,
                         text=True, env=dict(os.environ, PYTHONPATH=str(tmp_path)), timeout=60)
    assert out.returncode == 0, out.stderr
    import json
    names, hint, detected, attribution = json.loads(out.stdout)
    assert "zz_test" in names
    assert hint == "remove the test module"
    assert detected[-1] == "zz_test"
    assert attribution == [{"mechanism": "zz-test", "confidence": "confirmed",
                            "evidence": ["refused with EXDEV", "the dropped-in detector says so"]}]



def test_kernel_constants_are_defined_once():
    """PR_GET_MDWE, READ_IMPLIES_EXEC, ... are assigned in probe/platform/constants.py only."""
    import ast
    from probe.platform import constants
    names = {n for n in vars(constants) if n.isupper()}
    owners = {}
    for folder, _, files in os.walk(os.path.join(ROOT, "probe")):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read())
            for node in tree.body:
                if isinstance(node, ast.Assign):
                    for target in node.targets:
                        if isinstance(target, ast.Name) and target.id in names:
                            owners.setdefault(target.id, []).append(os.path.relpath(path, ROOT))
    assert owners == {n: [os.path.join("probe", "platform", "constants.py")] for n in names}


def test_live_calls_go_through_the_platform_layer():
    """A live source asks the platform module for system-call values, under the names a
    fixture's calls.txt uses; a name this OS cannot ask is Unavailable, not an error."""
    from probe.platform import impl
    from probe.policy import Source, Unavailable
    src = Source()
    for name in getattr(impl, "RECORDED_CALLS", {}):
        try:
            assert isinstance(src.call(name), str)
        except Unavailable as exc:
            assert str(exc)
    with pytest.raises(Unavailable, match="cannot be asked on this OS"):
        src.call("procctl NO_SUCH_CALL")
