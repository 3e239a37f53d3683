"""Reports for the collector tests.

Two sources: real reports from `memprobe run` on this machine (plain, under
PR_SET_MDWE and under the systemd-style seccomp filter, via tests/_confine.py),
produced once per session by the fixtures in tests/test_collect_real.py; and
hand-written sample reports in the documented format for cases a real run
cannot produce here (other hosts, attribution on any host, broken files).
"""

import copy
import json

import yaml

PROBE_IDS = [
    "exec_rw", "flip_rw_rx", "map_rwx", "flip_rw_rwx", "map_rx", "repatch_rx", "patch_rwx",
    "dual_map_memfd", "dual_map_shm", "dual_map_file", "exec_heap", "flip_heap", "exec_stack",
    "flip_stack", "patch_file_text", "read_implies_exec",
]

_STEPS = {
    "exec_rw": ["mmap", "write", "call"],
    "flip_rw_rx": ["mmap", "write", "mprotect_rx", "call"],
    "map_rwx": ["mmap", "write", "call"],
    "flip_rw_rwx": ["mmap", "mprotect_rwx", "write", "call"],
    "map_rx": ["mmap"],
    "repatch_rx": ["mmap", "write", "mprotect_rx", "mprotect_rw", "patch", "mprotect_rx", "call"],
    "patch_rwx": ["mmap", "write", "mprotect_rx", "mprotect_rwx", "patch", "call"],
    "dual_map_memfd": ["memfd_create", "mmap_rw", "mmap_rx", "write", "call"],
    "dual_map_shm": ["shm_open", "mmap_rw", "mmap_rx", "write", "call"],
    "dual_map_file": ["open", "mmap_rw", "mmap_rx", "write", "call"],
    "exec_heap": ["malloc", "write", "call"],
    "flip_heap": ["malloc", "write", "mprotect_rwx", "call"],
    "exec_stack": ["write", "call"],
    "flip_stack": ["write", "mprotect_rwx", "call"],
    "patch_file_text": ["open", "mmap_rx", "mprotect_rw", "patch", "mprotect_rx", "call"],
    "read_implies_exec": ["personality", "mmap", "write", "call"],
}

# variant -> probe -> (outcome, step, errno_name, signal)
_PLAIN = {pid: ("allowed", None, None, None) for pid in PROBE_IDS}
for _pid in ("exec_rw", "exec_heap", "exec_stack"):
    _PLAIN[_pid] = ("crashed", "call", None, "SIGSEGV")

_MDWE = dict(_PLAIN)
for _pid, _step in (("flip_rw_rx", "mprotect_rx"), ("map_rwx", "mmap"), ("flip_rw_rwx", "mprotect_rwx"),
                    ("repatch_rx", "mprotect_rx"), ("patch_rwx", "mprotect_rwx"), ("flip_heap", "mprotect_rwx"),
                    ("flip_stack", "mprotect_rwx"), ("patch_file_text", "mprotect_rx"),
                    ("read_implies_exec", "mmap")):
    _MDWE[_pid] = ("denied", _step, "EACCES", None)

_SECCOMP = dict(_PLAIN)
for _pid, _step in (("flip_rw_rx", "mprotect_rx"), ("map_rwx", "mmap"), ("flip_rw_rwx", "mprotect_rwx"),
                    ("repatch_rx", "mprotect_rx"), ("patch_rwx", "mprotect_rx"), ("flip_heap", "mprotect_rwx"),
                    ("flip_stack", "mprotect_rwx"), ("patch_file_text", "mprotect_rx")):
    _SECCOMP[_pid] = ("denied", _step, "EPERM", None)

VARIANTS = {"plain": _PLAIN, "mdwe": _MDWE, "seccomp": _SECCOMP}
_ERRNO = {"EACCES": 13, "EPERM": 1, "ENOTSUP": 95}
_SIGNAL = {"SIGSEGV": 11, "SIGKILL": 9, "SIGSYS": 31, "SIGBUS": 7}
_MECH = {"mdwe": ("mdwe-prctl", "confirmed", "PR_GET_MDWE=1 and EACCES"),
         "seccomp": ("seccomp", "likely", "Seccomp: 2, EPERM")}


def _summary(probes):
    def works(*ids):
        outcomes = [probes[i]["outcome"] for i in ids if i in probes]
        if not outcomes:
            return "unknown"
        if any(o == "allowed" for o in outcomes):
            return "works"
        if any(o in ("denied", "crashed", "killed") for o in outcomes):
            return "blocked"
        return "unknown"

    nx = {"crashed": "enforced", "killed": "enforced", "allowed": "not_enforced"}.get(
        probes["exec_rw"]["outcome"], "unknown")
    states = {
        "nx": nx,
        "wx_flip": works("flip_rw_rx"),
        "rwx_mapping": works("map_rwx"),
        "rwx_flip": works("flip_rw_rwx"),
        "rx_mapping": works("map_rx"),
        "dual_mapping": works("dual_map_memfd", "dual_map_shm", "dual_map_file"),
        "code_repatching": works("repatch_rx"),
        "rwx_patching": works("patch_rwx"),
        "file_text_patching": works("patch_file_text"),
        "heap_exec": works("flip_heap"),
        "stack_exec": works("flip_stack"),
    }
    words = {"works": "works", "blocked": "is blocked", "unknown": "is unknown", "broken": "is broken"}
    out = {}
    for cap, state in states.items():
        if cap == "nx":
            text = {"enforced": "NX enforced: code in plain RW memory crashes (SIGSEGV)",
                    "not_enforced": "NX not enforced: code in plain RW memory runs"}.get(state, "NX unknown")
        else:
            text = "%s %s" % (cap.replace("_", " "), words[state])
        out[cap] = {"state": state, "text": text}
    return out


def sample_report(variant="plain", hostname="vm", os_name="linux", arch="x86_64", kernel="6.18.44-fc",
                  generated_at="2026-11-27T02:30:00Z", attribution=False, policies=False, overrides=None):
    """A report dict in the documented schema_version 1 format."""
    table = VARIANTS[variant]
    probes = {}
    for pid in PROBE_IDS:
        outcome, step, errno_name, signal = table[pid]
        names = _STEPS[pid]
        if outcome == "allowed":
            step = names[-1]
        upto = names[: names.index(step) + 1] if step in names else names
        result = {
            "outcome": outcome,
            "step": step,
            "errno": _ERRNO.get(errno_name),
            "errno_name": errno_name,
            "signal": signal,
            "signal_number": _SIGNAL.get(signal),
            "value": 42 if outcome == "allowed" and pid in ("repatch_rx", "patch_rwx", "patch_file_text")
            else (23 if outcome == "allowed" and pid != "map_rx" else None),
            "expected": None if pid == "map_rx" else (42 if pid in ("repatch_rx", "patch_rwx", "patch_file_text")
                                                     else 23),
            "exec_dropped": False,
            "duration_ms": 0.9,
            "detail": "%s %s" % (pid, outcome if outcome != "denied" else "denied: %s at %s" % (errno_name, step)),
            "steps": [{"name": n} for n in upto],
        }
        if attribution and outcome == "denied" and variant in _MECH:
            mech, confidence, evidence = _MECH[variant]
            result["attribution"] = [{"mechanism": mech, "confidence": confidence, "evidence": evidence}]
        probes[pid] = result
    report = {
        "schema_version": 1,
        "tool": {"name": "memprobe", "version": "0.1.0"},
        "generated_at": generated_at,
        "host": {
            "os": os_name, "hostname": hostname, "kernel_release": kernel,
            "kernel_version": "#1 SMP PREEMPT_DYNAMIC", "machine": arch, "arch": arch,
            "pointer_bits": 64, "byte_order": "little",
            "distribution": {"id": "debian", "name": "Debian GNU/Linux", "version": "12"},
            "libc": {"name": "glibc", "version": "2.36"},
            "python": {"implementation": "CPython", "version": "3.11.7"},
            "page_size": 4096, "cpu_nx": True,
            "provenance": {"method": "native", "emulator": None},
        },
        "process": {
            "uid": 0, "euid": 0, "gid": 0, "interpreter": "/usr/bin/python3",
            "personality": "0x00000000", "read_implies_exec": False,
            "seccomp_mode": 2 if variant == "seccomp" else 0,
            "seccomp_filters": 1 if variant == "seccomp" else 0,
            "no_new_privs": variant == "seccomp",
            "mdwe": 1 if variant == "mdwe" else 0,
            "isolation": "fork", "timeout_s": 10.0,
        },
    }
    if policies:
        report["policies"] = {
            "mdwe": {"state": "on" if variant == "mdwe" else "off", "evidence": "PR_GET_MDWE"},
            "seccomp": {"state": "filter" if variant == "seccomp" else "off", "filters": 1},
        }
    report["probes"] = probes
    report["measurements"] = {"flip_cycle_ns": {"outcome": "measured", "median_ns": 850, "cycles": 2000,
                                                "detail": "median of 2000 RW->RX->RW cycles"}}
    report["summary"] = _summary(probes)
    if policies:
        report["strategies"] = {"rw_rx_flip": {"state": report["summary"]["wx_flip"]["state"]}}
        report["recommendation"] = "flip RW->RX" if variant == "plain" else "double map via memfd"
    if overrides:
        for path, value in overrides.items():
            _set(report, path, value)
    return report


def _set(doc, path, value):
    parts = path.split(".")
    for part in parts[:-1]:
        doc = doc[part]
    if value is _DELETE:
        del doc[parts[-1]]
    else:
        doc[parts[-1]] = value


_DELETE = object()
DELETE = _DELETE


def dump_yaml(report):
    return yaml.safe_dump(report, sort_keys=False, default_flow_style=False, allow_unicode=True)


def dump_json(report):
    return json.dumps(report, indent=2)


def write(tmp_path, name, report, fmt="yaml"):
    path = tmp_path / name
    path.write_text(dump_json(report) if fmt == "json" else dump_yaml(report), encoding="utf-8")
    return path


def clone(report):
    return copy.deepcopy(report)
