"""The mechanisms attribution knows, and what the policy detectors say of each.

    status_of(mechanism, facts, op) -> (ACTIVE | INACTIVE | UNSURE, evidence)

Works from the report dict alone (Facts); nothing here touches the host.
"""

MECHANISMS = {
    "nx": "hardware no-execute page protection (NX/XD)",
    "pax-mprotect": "PaX MPROTECT (grsecurity / hardened kernel)",
    "pax-pageexec": "PaX PAGEEXEC (grsecurity / hardened kernel)",
    "selinux-execmem": "SELinux execmem permission",
    "selinux-execheap": "SELinux execheap permission",
    "selinux-execstack": "SELinux execstack permission",
    "selinux-execmod": "SELinux execmod permission",
    "seccomp": "a seccomp filter (e.g. systemd MemoryDenyWriteExecute=)",
    "mdwe": "the kernel's memory-deny-write-execute prctl (PR_SET_MDWE)",
    "noexec-mount": "a noexec mount",
    "memfd-noexec": "vm.memfd_noexec",
    "freebsd-wx": "FreeBSD W^X (kern.elf*.allow_wx=0)",
    "hardenedbsd-pageexec": "HardenedBSD PAGEEXEC",
    "hardenedbsd-mprotect": "HardenedBSD MPROTECT",
    "netbsd-pax-mprotect": "NetBSD PaX MPROTECT",
    "openbsd-wx": "OpenBSD W^X",
    "unknown": "no known mechanism matches",
}

# What memory each probe works on: the rules of SELinux, noexec mounts and MDWE differ

# Which noexec_mounts path a file-backed probe lives on.
PATH_ROLE = {"dual_map_shm": "shm", "dual_map_file": "tmpdir", "patch_file_text": "tmpdir"}
# The same for the repatching probes, by the way they made their live code (`live_code`).
LIVE_CODE_ROLE = {"file": "tmpdir", "memfd": "memfd"}


def path_role(op):
    """The noexec_mounts path role of the memory `op` worked on, or None."""
    live = getattr(op, "live_code", None)
    return LIVE_CODE_ROLE.get(live) if live else PATH_ROLE.get(op.probe)


# --- reading the report ---------------------------------------------------------------


class Facts:
    """The report's evidence in the shape the rules use."""

    def __init__(self, report):
        self.host = report.get("host") or {}
        self.process = report.get("process") or {}
        self.policies = report.get("policies") or {}
        self.probes = report.get("probes") or {}
        self.os = self.host.get("os")

    def policy(self, name):
        value = self.policies.get(name)
        return value if isinstance(value, dict) else {}

    def outcome(self, probe_id):
        result = self.probes.get(probe_id)
        return result.get("outcome") if isinstance(result, dict) else None

    # Cross-probe facts -------------------------------------------------------
    def execmem_denied(self):
        """An anonymous RX-only mmap refused with EACCES: only SELinux execmem does that."""
        for pid in ("map_rx", "mprotect_rx_noop"):
            r = self.probes.get(pid) or {}
            if r.get("outcome") == "denied" and r.get("errno_name") == "EACCES" and \
                    str(r.get("step", "")).startswith("mmap"):
                return pid
        return None

    def execmem_allowed(self):
        return self.outcome("map_rx") == "allowed"

    def noop_refused(self):
        r = self.probes.get("mprotect_rx_noop") or {}
        if r.get("step") == "mprotect_rx" and (
                (r.get("outcome") == "denied" and r.get("errno_name") == "EPERM")
                or r.get("signal") == "SIGSYS"):
            return r
        return None



# --- detector status ------------------------------------------------------------------

ACTIVE, INACTIVE, UNSURE = "active", "inactive", "unsure"


def _pax(f):
    p = f.policy("pax")
    return p.get("state"), p.get("flags") or {}, p


def _pax_scope(f):
    p = f.policy("pax")
    marks = p.get("markings") or {}
    if marks.get("source"):
        return "note: %s" % p.get("scope")
    return None


def status_of(mech, f, op):
    """(ACTIVE/INACTIVE/UNSURE, evidence string) of what the detectors say."""
    if mech == "nx":
        nx = f.policy("cpu_nx").get("state")
        if nx in ("on", "off"):
            return (ACTIVE if nx == "on" else INACTIVE), "the CPU lists the nx flag" if nx == "on" \
                else "the CPU does not list the nx flag"
        host_nx = f.host.get("cpu_nx")
        if host_nx is not None:
            return (ACTIVE if host_nx else INACTIVE), "host.cpu_nx is %s" % str(host_nx).lower()
        return UNSURE, "the CPU's NX support is not reported on this host"
    if mech in ("pax-mprotect", "pax-pageexec"):
        state, flags, p = _pax(f)
        if state == "absent":
            return INACTIVE, "the kernel has no PaX (no PaX: line in /proc/self/status)"
        if state in ("on", "off"):
            key = "mprotect" if mech == "pax-mprotect" else "pageexec"
            on = flags.get(key)
            if mech == "pax-mprotect":
                on = p.get("mprotect_effective", on)
            line = "PaX flags %s" % p.get("status_line")
            if on:
                return ACTIVE, "%s: %s is on for this process" % (line, key.upper())
            return INACTIVE, "%s: %s is off for this process" % (line, key.upper())
        return UNSURE, "PaX flags of this process are not known (%s)" % (p.get("reason") or state or "no detector")
    if mech.startswith("selinux-"):
        s = f.policy("selinux")
        state = s.get("state")
        if state == "enforcing":
            return ACTIVE, "SELinux is enforcing (context %s)" % (s.get("context") or "unknown")
        if state in ("permissive", "disabled"):
            return INACTIVE, "SELinux is %s" % state
        return UNSURE, "SELinux state unknown"
    if mech == "seccomp":
        s = f.policy("seccomp")
        mode = s.get("mode", f.process.get("seccomp_mode"))
        filters = s.get("filters", f.process.get("seccomp_filters"))
        if mode == 2:
            return ACTIVE, "Seccomp: 2 in /proc/self/status (%s filter%s attached)" % (
                filters if filters is not None else "some", "" if filters == 1 else "s")
        if mode in (0, 1):
            return INACTIVE, "Seccomp: %d in /proc/self/status: no filter" % mode
        return UNSURE, "the seccomp mode is not known"
    if mech == "mdwe":
        s = f.policy("mdwe")
        value = s.get("value") if s.get("state") in ("on", "off") else f.process.get("mdwe")
        if s.get("state") == "unsupported":
            return INACTIVE, "the kernel has no PR_GET_MDWE (before Linux 6.3)"
        if isinstance(value, int):
            if value & 1:
                return ACTIVE, "prctl(PR_GET_MDWE) = %d (PR_MDWE_REFUSE_EXEC_GAIN)" % value
            return INACTIVE, "prctl(PR_GET_MDWE) = %d" % value
        return UNSURE, "PR_GET_MDWE is not known"
    if mech == "noexec-mount":
        role = path_role(op)
        if role == "shm" and f.os == "freebsd":
            return INACTIVE, "FreeBSD's shm objects (SHM_ANON) live in no file system"
        if role == "memfd":
            return INACTIVE, "a memfd lives on the kernel's internal mount, never mounted noexec"
        paths = f.policy("noexec_mounts").get("paths") or {}
        entry = paths.get(role) if role else None
        if not entry or entry.get("noexec") is None:
            return UNSURE, "the mount of the %s directory is not known" % (role or "probe's")
        where = "%s is on %s (%s)" % (entry.get("path"), entry.get("mount_point"), entry.get("fstype"))
        if entry["noexec"]:
            return ACTIVE, "%s mounted noexec" % where
        return INACTIVE, "%s mounted without noexec" % where
    if mech == "memfd-noexec":
        s = f.policy("memfd_noexec")
        if s.get("value") == 2:
            return ACTIVE, "vm.memfd_noexec = 2: memfd_create(MFD_EXEC) is refused"
        if s.get("state") in ("off", "on", "absent"):
            return INACTIVE, "vm.memfd_noexec is %s" % (s.get("value") if s.get("value") is not None else "absent")
        return UNSURE, "vm.memfd_noexec is not known"
    if mech == "freebsd-wx":
        s = f.policy("freebsd_wx")
        state = s.get("state")
        proc = s.get("procctl") or {}
        if state == "enforcing":
            return ACTIVE, ("procctl(PROC_WXMAP_STATUS) = %s (WXORX_ENFORCE)" % proc["value"]) if proc \
                else "kern.%s.allow_wx = 0" % s.get("abi", "elf64")
        if state in ("off", "absent"):
            return INACTIVE, "W^X is not enforced for this process (allow_wx %s)" % s.get("allow_wx")
        return UNSURE, "FreeBSD W^X state unknown"
    if mech in ("hardenedbsd-pageexec", "hardenedbsd-mprotect"):
        s = f.policy("hardenedbsd")
        feature = s.get(mech.split("-")[1]) or {}
        status = feature.get("status")
        if s.get("state") == "absent":
            return INACTIVE, "not HardenedBSD (no hardening.pax sysctls)"
        if status is None:
            return UNSURE, "hardening.pax.%s.status unknown" % mech.split("-")[1]
        name = "hardening.pax.%s.status = %d (%s)" % (mech.split("-")[1], status, feature.get("mode"))
        if status >= 2:
            return ACTIVE, name
        if status == 1:
            return UNSURE, name + ": applies only to programs that opt in"
        return INACTIVE, name
    if mech == "netbsd-pax-mprotect":
        s = f.policy("netbsd_pax")
        eff = s.get("effective_for_interpreter")
        desc = "security.pax.mprotect.enabled = %s, .global = %s" % (s.get("enabled"), s.get("global"))
        if eff is True or (eff is None and s.get("state") == "on"):
            return ACTIVE, desc
        if eff is False or s.get("state") in ("off", "absent"):
            return INACTIVE, desc + (" (interpreter marked %s)" % s["interpreter_marking"]
                                     if s.get("interpreter_marking") else "")
        return UNSURE, desc
    if mech == "openbsd-wx":
        s = f.policy("openbsd_wx")
        if s.get("state") == "off":
            return INACTIVE, s.get("reason") or "W^X does not apply to this interpreter"
        return ACTIVE, "OpenBSD always enforces W^X (kern.wxabort = %s)" % s.get("wxabort")
    return UNSURE, ""


MECH_OSES = {"freebsd-wx": ("freebsd",), "hardenedbsd-pageexec": ("freebsd",),
             "hardenedbsd-mprotect": ("freebsd",), "netbsd-pax-mprotect": ("netbsd",),
             "openbsd-wx": ("openbsd",)}
for _m in ("pax-mprotect", "pax-pageexec", "selinux-execmem", "selinux-execheap",
           "selinux-execstack", "selinux-execmod", "seccomp", "mdwe", "memfd-noexec"):
    MECH_OSES[_m] = ("linux",)


def sigkill_is_pax(report):
    """Whether a SIGKILL can be read as a refusal: only where a detector says PaX PAGEEXEC
    is on for this process. Anywhere else an outside SIGKILL (the OOM killer, an operator)
    says nothing about the strategy."""
    return status_of("pax-pageexec", Facts(report), None)[0] == ACTIVE
