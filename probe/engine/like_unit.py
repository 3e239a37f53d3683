"""`memprobe run --like-unit UNIT`: the probes under a given service's sandbox.

The unit's sandbox properties are read with `systemctl show` and copied onto a
transient unit (`systemd-run --wait --pipe`) that runs `memprobe run` again; its
report comes back on the pipe and is completed with the unit and the properties
copied (process.like_unit). What the service gets is what the kernel and systemd
do to a process started with those settings, not a hand-written imitation.
"""

import argparse
import json
import os
import subprocess
import sys

from probe.errors import HostError

# The properties that change what a process may map or call (systemd.exec(5)).
PROPERTIES = ("MemoryDenyWriteExecute", "SystemCallFilter", "SystemCallErrorNumber",
              "NoNewPrivileges", "User", "Group", "PrivateTmp", "ProtectSystem", "SELinuxContext",
              "RestrictNamespaces", "LockPersonality", "RestrictRealtime", "PrivateDevices")
TIMEOUT = 600


def systemd_is_pid1(root: str = "/") -> bool:
    """sd_booted(3): systemd runs as init when /run/systemd/system/ exists."""
    return os.path.isdir(os.path.join(root, "run", "systemd", "system"))


def parse_show(text: str) -> dict:
    """`systemctl show` output (KEY=VALUE lines) -> dict."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key] = value
    return out


def unit_properties(unit: str) -> dict:
    """The unit's sandbox properties that are set, as systemd-run takes them."""
    if not systemd_is_pid1():
        raise HostError("--like-unit: systemd is not PID 1 here (no /run/systemd/system), "
                        "so there is no unit to copy")
    try:
        proc = subprocess.run(["systemctl", "show", unit, "-p", "LoadState"]
                              + ["-p" + name for name in PROPERTIES],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HostError("--like-unit: cannot run systemctl show: %s" % exc)
    shown = parse_show(proc.stdout)
    if proc.returncode != 0 or shown.get("LoadState") in (None, "not-found"):
        raise HostError("--like-unit: no unit %s (systemctl show: LoadState=%s)"
                        % (unit, shown.get("LoadState") or proc.stderr.strip() or "?"))
    return {name: shown[name] for name in PROPERTIES if shown.get(name) not in (None, "")}


def probe_argv(args: argparse.Namespace) -> list:
    """`memprobe run` for the transient unit: same probes, report as JSON on stdout."""
    argv = ["run", "--format", "json", "--output", "-", "--isolation", args.isolation,
            "--timeout", repr(args.timeout), "--arm-mode", args.arm_mode]
    if args.only:
        argv += ["--only"] + list(args.only)
    if args.jobs:
        argv += ["--jobs", str(args.jobs)]
    return argv


def systemd_run_argv(unit: str, properties: dict, args: argparse.Namespace) -> list:
    # The interpreter by absolute path: a transient unit does not search a venv's bin/.
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {"PYTHONPATH": package_parent}
    env.update({k: v for k, v in os.environ.items() if k.startswith("MEMPROBE_PROVENANCE")})
    argv = ["systemd-run", "--wait", "--pipe", "--collect", "--quiet"]
    argv += ["-p%s=%s" % item for item in sorted(properties.items())]
    argv += ["-E%s=%s" % item for item in sorted(env.items())]
    return argv + ["--", os.path.realpath(sys.executable), "-m", "probe"] + probe_argv(args)


def collect(args: argparse.Namespace) -> dict:
    """Run the probes in a transient unit like args.like_unit; the report it gave back."""
    unit = args.like_unit
    properties = unit_properties(unit)
    try:
        proc = subprocess.run(systemd_run_argv(unit, properties, args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HostError("--like-unit: systemd-run failed: %s" % exc)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["exit status %d" % proc.returncode])[-1]
        raise HostError("--like-unit: the probes could not run like %s: %s" % (unit, last))
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        raise HostError("--like-unit: the transient unit gave no report: %r" % proc.stdout[:200])
    report["process"]["like_unit"] = {"unit": unit, "properties": properties}
    return report
