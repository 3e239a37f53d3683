"""memprobe on real Debian kernels booted under QEMU (TCG): systemd's
MemoryDenyWriteExecute= through seccomp (systemd 252) and PR_SET_MDWE (systemd 257),
SELinux enforcing with Debian's reference policy, kernels 5.10 and 7.x, and
vm.memfd_noexec=2 set for real.

Each boot (tools/guest/cases.py) runs several memprobe invocations and costs 40-90 s
of emulation, so the tests of one boot share it. Driven by `tox -e vm`, which builds
the images (tools/guest/rig.py setup) and sets MEMPROBE_GUEST_TESTS; elsewhere every
test here skips.
"""

import importlib.util
import json
import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP_REASON = ("guest kernels boot only under `tox -e vm` (tools/guest/rig.py: root, "
               "qemu-system-x86, several minutes of emulation)")
pytestmark = pytest.mark.skipif(not os.environ.get("MEMPROBE_GUEST_TESTS"), reason=SKIP_REASON)


def _load_rig():
    sys.path.insert(0, os.path.join(ROOT, "tools", "guest"))
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    spec = importlib.util.spec_from_file_location("memprobe_guest_rig",
                                                  os.path.join(ROOT, "tools", "guest", "rig.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rig = _load_rig() if os.environ.get("MEMPROBE_GUEST_TESTS") else None


class Booted:
    """One boot's results: reports by step name, the job's own records."""

    def __init__(self, result):
        self.result = result

    def text(self, name):
        value = self.result.text(name)
        assert value is not None, "%s missing; job output:\n%s" % (name, self.result.output[-3000:])
        return value.strip()

    def report(self, step):
        rc = self.text(step + ".rc")
        assert rc == "0", "%s exited %s: %s" % (step, rc, self.text(step + ".err")[-2000:])
        return yaml.safe_load(self.text(step + ".yaml"))


@pytest.fixture(scope="module")
def boots():
    done = {}
    r = rig.Rig()

    def get(name):
        if name not in done:
            # Inside tox -e vm the images were just built: a missing one is a failure.
            assert r.ready(name), "image for %s is not built (rig.py setup)" % name
            result = r.boot(name)
            assert result.status == 0, result.output[-4000:]
            done[name] = Booted(result)
        return done[name]
    return get


def outcome(report, probe):
    got = report["probes"][probe]
    return got["outcome"], got.get("errno_name")


def mechanisms(report, probe):
    return [(a["mechanism"], a["confidence"]) for a in report["probes"][probe].get("attribution") or []]


def evidence(report, probe):
    return " | ".join(e for a in report["probes"][probe].get("attribution") or [] for e in a["evidence"])


def verdicts(report):
    return {pid: outcome(report, pid) for pid in report["probes"]}


def no_errors(report):
    return [pid for pid, p in report["probes"].items() if p["outcome"] in ("error", "unknown")]
