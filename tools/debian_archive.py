"""Shared by the rigs under tools/: running commands with retries, finding the Debian
archive the host's apt uses (read, never changed) and apt-get with a private state.

Only the standard library: the rigs run on the host's python3 before anything else
is installed.
"""

import glob
import os
import re
import subprocess
import sys
import time

KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
RETRIES = 3            # network steps: a slow mirror must not fail the run at once
APT_TIMEOUT = 600      # seconds per apt-get call


class RigError(Exception):
    pass


def log(msg, prefix="rig"):
    sys.stderr.write("%s: %s\n" % (prefix, msg))
    sys.stderr.flush()


def run(cmd, retries=1, timeout=APT_TIMEOUT, quiet=True, **kw):
    """Run cmd, retried `retries` times; its output (when quiet), or RigError."""
    for attempt in range(1, retries + 1):
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE if quiet else None,
                                  stderr=subprocess.STDOUT if quiet else None,
                                  text=True, timeout=timeout, **kw)
        except subprocess.TimeoutExpired:
            out, code = "timed out after %ds" % timeout, None
        else:
            if proc.returncode == 0:
                return proc.stdout or ""
            out, code = proc.stdout or "", proc.returncode
        if attempt < retries:
            log("retrying (%d/%d) after failure of: %s" % (attempt, retries, " ".join(cmd[:3])))
            time.sleep(5 * attempt)
    raise RigError("command failed (%s): %s\n%s" % (code, " ".join(cmd), (out or "")[-3000:]))


def host_mirror(override_var, root="/"):
    """URI of the Debian archive (not -security) the host's apt uses; the environment
    variable `override_var` names another."""
    override = os.environ.get(override_var)
    if override:
        return override.rstrip("/")
    entries = []
    for path in [os.path.join(root, "etc/apt/sources.list")] + sorted(
            glob.glob(os.path.join(root, "etc/apt/sources.list.d/*"))):
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        entries += parse_sources(text, deb822=path.endswith(".sources"))
    for uri, suites, components in entries:
        if "main" in components and any(s in ("bookworm", "trixie", "sid", "stable", "testing",
                                              "unstable") for s in suites):
            return uri.rstrip("/")
    raise RigError("no Debian archive found in the host's apt sources; set %s" % override_var)


def parse_sources(text, deb822):
    """[(uri, suites, components)] of the `deb` entries in an apt sources file."""
    out = []
    if deb822:
        for stanza in re.split(r"\n\s*\n", text):
            fields = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[:1].isspace():
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.split()
            if "deb" in fields.get("types", []) and fields.get("enabled", ["yes"]) != ["no"]:
                for uri in fields.get("uris", []):
                    out.append((uri, fields.get("suites", []), fields.get("components", [])))
    else:
        for line in text.splitlines():
            line = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
            if len(line) >= 4 and line[0] == "deb":
                out.append((line[1], [line[2]], line[3:]))
    return out


def sources_line(mirror, suite):
    return "deb [signed-by=%s] %s %s main" % (KEYRING, mirror, suite)


def du(path):
    """Bytes allocated under path (sparse files count what they use, hard links once)."""
    total = 0
    seen = set()
    for dirpath, _dirnames, filenames in os.walk(path):
        for name in filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total
