"""Build, serialise and atomically write a report (schema version 1)."""

from __future__ import annotations

import json
import os
import re
import struct
import sys
import time

from probe import __version__
from probe.vocab import SCHEMA_VERSION
from probe.platform import libc as _libc
from probe.platform import OS_NAME, impl
from probe.attribution.summary import summarise  # noqa: F401 - re-exported

# Names for the type checker only: importing typing would slow `memprobe run` down.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, Optional, Union


def utc_now() -> str:
    """Now, in UTC, as the report writes times."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def host_section(arch_name: str) -> Dict[str, Any]:
    """The report's host section for this machine."""
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


def process_section(isolation: str, timeout: float) -> Dict[str, Any]:
    """The report's process section: this process, the isolation and the per-probe timeout."""
    from probe.engine import tmpfiles   # tempfile's choice, without tempfile's imports
    info = impl.process_info()
    info["tmpdir"] = tmpfiles.default_tmpdir()   # where dual_map_file and patch_file_text put files
    info["isolation"] = isolation
    info["timeout_s"] = float(timeout)
    return info


def build_report(arch_name: str, probes: Dict[str, Any], measurements: Dict[str, Any], isolation: str,
                 timeout: float, extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
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

def escape_undecodable(value: Any) -> Any:
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


def dumps(report: Dict[str, Any], fmt: str = "yaml", ascii_only: bool = False) -> str:
    """The report as YAML or JSON text; `ascii_only` escapes every non-ASCII character the
    way the format does (\\u00e9), for a stdout whose encoding lacks them."""
    report = escape_undecodable(report)
    if fmt == "json":
        return json.dumps(report, indent=2, ensure_ascii=ascii_only) + "\n"
    # Our own emitter, not PyYAML: importing PyYAML alone costs a run more than this takes.
    from probe.report.yaml_emit import emit
    return emit(report, ascii_only=ascii_only)


def default_path(report: Dict[str, Any], fmt: str = "yaml", directory: str = "reports") -> str:
    """reports/OS-ARCH-HOSTNAME.yaml (or .json): the file name `memprobe run` writes by default."""
    host = report["host"]
    parts = [host["os"], host["arch"] or host["machine"] or "unknown", host["hostname"]]
    name = "-".join(re.sub(r"[^A-Za-z0-9_.]+", "_", str(p)) for p in parts)
    return os.path.join(directory, "%s.%s" % (name, "json" if fmt == "json" else "yaml"))


def write_atomic(path: str, content: Union[str, Iterable[str]]) -> None:
    """Write an output file the one way every writer does (see probe.report.output)."""
    from probe.report import output as _output
    _output.write_file(path, content)
