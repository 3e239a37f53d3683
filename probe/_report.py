"""Build, serialise and atomically write a report (schema version 1)."""

import datetime
import json
import os
import re
import struct
import sys
import tempfile

from probe import __version__, _libc
from probe._errors import InputError
from probe._platform import OS_NAME, impl
from probe._summary import CAPABILITIES, summarise  # noqa: F401 - re-exported

SCHEMA_VERSION = 1

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
    report["summary"] = summarise(probes, extra.get("policies"))
    for key in ("strategies", "recommendation"):
        if key in extra:
            report[key] = extra[key]
    return report


# --- serialisation ----------------------------------------------------------

def _dumper():
    import yaml
    return getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dumps(report, fmt="yaml"):
    if fmt == "json":
        return json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    import yaml
    return yaml.dump(report, Dumper=_dumper(), sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=100)


def default_path(report, fmt="yaml", directory="reports"):
    host = report["host"]
    parts = [host["os"], host["arch"] or host["machine"] or "unknown", host["hostname"]]
    name = "-".join(re.sub(r"[^A-Za-z0-9_.]+", "_", str(p)) for p in parts)
    return os.path.join(directory, "%s.%s" % (name, "json" if fmt == "json" else "yaml"))


def write_atomic(path, content, newline=None, make_dirs=True):
    """Write `content` (a string, or an iterable of strings written as they come) via a
    temporary file in the same directory and rename: a crash leaves the old file or the
    new one, never half a file, and no temporary file."""
    from probe._load import clean
    directory = os.path.dirname(os.path.abspath(path))
    try:
        if make_dirs:
            os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".%s." % os.path.basename(path),
                                   suffix=".tmp")
    except OSError as exc:
        raise InputError("%s: cannot write: %s" % (clean(path), exc.strerror or exc)) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as f:
            for chunk in ([content] if isinstance(content, str) else content):
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise InputError("%s: cannot write: %s" % (clean(path), exc.strerror or exc)) from None
        raise
