"""Build, serialise and atomically write a report (schema version 1)."""

import datetime
import json
import os
import re
import struct
import sys

from probe import __version__, _libc
from probe._platform import OS_NAME, impl

SCHEMA_VERSION = 1

# capability -> (probe ids, kind, what it means in words)
CAPABILITIES = [
    ("nx", ("exec_rw",), "nx", "NX", "code in plain RW memory"),
    ("heap_nx", ("exec_heap",), "nx", "heap NX", "code in malloc'd memory"),
    ("stack_nx", ("exec_stack",), "nx", "stack NX", "code on the stack"),
    ("wx_flip", ("flip_rw_rx",), "works", "W->X flip (mmap RW, write, mprotect RX)", None),
    ("rwx_mapping", ("map_rwx",), "works", "RWX mapping (mmap RWX)", None),
    ("rwx_flip", ("flip_rw_rwx",), "works", "RW->RWX mprotect", None),
    ("rx_mapping", ("map_rx",), "works", "anonymous RX mapping", None),
    ("dual_mapping", ("dual_map_memfd", "dual_map_shm", "dual_map_file"), "any",
     "double mapping (RW view + RX view)", None),
    ("code_repatching", ("repatch_rx",), "works", "re-patching live code (RX->RW->RX)", None),
    ("rwx_patching", ("patch_rwx",), "works", "patching live code while executable (RX->RWX)", None),
    ("file_text_patching", ("patch_file_text",), "works",
     "patching file-backed code (a debugger's breakpoint)", None),
    ("heap_flip", ("flip_heap",), "works", "making heap memory executable (mprotect RWX)", None),
    ("stack_flip", ("flip_stack",), "works", "making stack memory executable (mprotect RWX)", None),
    ("read_implies_exec", ("read_implies_exec",), "works",
     "READ_IMPLIES_EXEC personality (RW memory runs)", None),
]

_WORKS = {"allowed": "works", "denied": "blocked", "crashed": "blocked", "killed": "blocked",
          "wrong_result": "broken"}


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def host_section(arch_name):
    uname = impl.uname()
    return {
        "os": OS_NAME,
        "hostname": impl.hostname(),
        "kernel_release": uname["kernel_release"],
        "kernel_version": uname["kernel_version"],
        "machine": uname["machine"],
        "arch": arch_name,
        "pointer_bits": struct.calcsize("P") * 8,
        "byte_order": sys.byteorder,
        "distribution": impl.distribution(),
        "libc": impl.libc_info(),
        "python": impl.python_info(),
        "page_size": _libc.PAGESIZE,
        "cpu_nx": impl.cpu_nx(arch_name),
        "provenance": impl.provenance(),
    }


def process_section(isolation, timeout):
    import tempfile
    info = impl.process_info()
    info["tmpdir"] = tempfile.gettempdir()   # where dual_map_file and patch_file_text put files
    info["isolation"] = isolation
    info["timeout_s"] = float(timeout)
    return info


def _why(verdict):
    if verdict["outcome"] == "denied":
        if verdict.get("exec_dropped"):
            return "PROT_EXEC silently dropped at %s" % verdict["step"]
        return "%s refused with %s" % (verdict["step"], verdict["errno_name"])
    if verdict["outcome"] in ("crashed", "killed"):
        return "%s at step %s" % (verdict["signal"], verdict["step"])
    if verdict["outcome"] == "wrong_result":
        return "returned %r instead of %r" % (verdict["value"], verdict["expected"])
    return "%s: %s" % (verdict["outcome"], verdict.get("detail") or "no detail")


def _nx_line(name, what, verdict):
    outcome = verdict["outcome"] if verdict else "missing"
    if outcome in ("crashed", "killed"):
        return "enforced", "%s enforced: %s crashes (%s)" % (name, what, verdict["signal"])
    if outcome == "allowed":
        return "not_enforced", "%s not enforced: %s runs" % (name, what)
    if outcome == "denied":
        return "enforced", "%s enforced: %s is refused before it runs (%s)" % (name, what, _why(verdict))
    return "unknown", "%s unknown: %s" % (name, "not probed" if verdict is None else _why(verdict))


def summarise(probes):
    summary = {}
    for cap, ids, kind, name, what in CAPABILITIES:
        verdicts = [(i, probes[i]) for i in ids if i in probes]
        if not verdicts:
            continue
        if kind == "nx":
            state, text = _nx_line(name, what, verdicts[0][1])
        elif kind == "any":
            works = [i for i, v in verdicts if v["outcome"] == "allowed"]
            states = [_WORKS.get(v["outcome"], "unknown") for _, v in verdicts]
            if works:
                state = "works"
                text = "%s works via %s" % (name, ", ".join(i.replace("dual_map_", "") for i in works))
                others = [(i, v) for i, v in verdicts if i not in works]
                if others:
                    text += "; not via %s" % "; ".join("%s (%s)" % (i.replace("dual_map_", ""), _why(v))
                                                       for i, v in others)
            else:
                state = "blocked" if "blocked" in states else ("broken" if "broken" in states else "unknown")
                text = "%s %s: %s" % (name, state, "; ".join(
                    "%s: %s" % (i.replace("dual_map_", ""), _why(v)) for i, v in verdicts))
        else:
            verdict = verdicts[0][1]
            state = _WORKS.get(verdict["outcome"], "unknown")
            text = "%s works" % name if state == "works" else "%s %s: %s" % (name, state, _why(verdict))
        summary[cap] = {"state": state, "text": text}
    return summary


def build_report(arch_name, probes, measurements, isolation, timeout, extra=None):
    """The report as an ordered dict; `extra` sections (policies, strategies...) slot in by name."""
    extra = extra or {}
    report = {"schema_version": SCHEMA_VERSION,
              "tool": {"name": "memprobe", "version": __version__},
              "generated_at": utc_now(),
              "host": host_section(arch_name),
              "process": process_section(isolation, timeout)}
    if "policies" in extra:
        report["policies"] = extra["policies"]
    report["probes"] = probes
    report["measurements"] = measurements
    report["summary"] = summarise(probes)
    for key in ("strategies", "recommendation"):
        if key in extra:
            report[key] = extra[key]
    return report


# --- serialisation ----------------------------------------------------------

def _dumper():
    import yaml
    return getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def escape_undecodable(value):
    """`value` with every string made encodable: bytes the system gave undecoded (a hostname,
    a path: os and socket hand them over as lone surrogates) become backslash escapes such as
    \\xff, which UTF-8, YAML, JSON and XML can all carry."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            raw = value.encode("utf-8", "surrogateescape" if _only_escaped_bytes(value)
                               else "backslashreplace")
            return raw.decode("utf-8", "backslashreplace")
    if isinstance(value, dict):
        return {key: escape_undecodable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [escape_undecodable(item) for item in value]
    return value


def _only_escaped_bytes(text):
    return all(not "\ud800" <= ch <= "\udfff" or "\udc80" <= ch <= "\udcff" for ch in text)


def dumps(report, fmt="yaml", ascii_only=False):
    """The report as YAML or JSON text; `ascii_only` escapes every non-ASCII character the
    way the format does (\\u00e9), for a stdout whose encoding lacks them."""
    report = escape_undecodable(report)
    if fmt == "json":
        return json.dumps(report, indent=2, ensure_ascii=ascii_only) + "\n"
    import yaml
    return yaml.dump(report, Dumper=_dumper(), sort_keys=False, default_flow_style=False,
                     allow_unicode=not ascii_only, width=100)


def default_path(report, fmt="yaml", directory="reports"):
    host = report["host"]
    parts = [host["os"], host["arch"] or host["machine"] or "unknown", host["hostname"]]
    name = "-".join(re.sub(r"[^A-Za-z0-9_.]+", "_", str(p)) for p in parts)
    return os.path.join(directory, "%s.%s" % (name, "json" if fmt == "json" else "yaml"))


def write_atomic(path, content):
    """Write an output file the one way every writer does (see probe._output)."""
    from probe import _output
    _output.write_file(path, content)
