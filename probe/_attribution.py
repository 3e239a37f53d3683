"""Attribution: which mechanism refused each probe, and what a JIT should do here.

    attribute(report) -> None

Works from the report dict alone (host, process, policies, probes): adds `attribution`
to every probe whose outcome is not `allowed` (or `skipped`), and the top-level
`strategies` and `recommendation`. Pure functions; nothing here touches the host.

The rules come from what each mechanism refuses and how (shared/MECHANISMS.md):
a mechanism is a candidate when the refused operation and the errno or signal match
what it does; the policy detectors then make it `confirmed` (the detector says it is
active), drop it (the detector says it is off) or leave it `likely` (the detector
could not tell). Probes that separate mechanisms (map_rx, mprotect_rx_noop) refine it.
"""

import re

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
# for anonymous memory, heap, stack and file-backed mappings.
PROBE_MEMORY = {
    "exec_rw": "anon", "flip_rw_rx": "anon", "map_rwx": "anon", "flip_rw_rwx": "anon",
    "map_rx": "anon", "mprotect_rx_noop": "anon", "repatch_rx": "anon", "patch_rwx": "anon",
    "dual_map_memfd": "memfd", "dual_map_shm": "shm", "dual_map_file": "file",
    "exec_heap": "heap", "flip_heap": "heap", "exec_stack": "stack", "flip_stack": "stack",
    "patch_file_text": "private_file", "read_implies_exec": "anon",
}
# Probes that run code from memory that was never made executable.
NON_X_CODE = ("exec_rw", "exec_heap", "exec_stack")
# Which noexec_mounts path a file-backed probe lives on.
PATH_ROLE = {"dual_map_shm": "shm", "dual_map_file": "tmpdir", "patch_file_text": "tmpdir"}

FIX_HINTS = {
    "mdwe": "start the program without PR_SET_MDWE / MemoryDenyWriteExecute= (it cannot be undone in-process)",
    "seccomp": "for a systemd service, set MemoryDenyWriteExecute=no",
    "pax-mprotect": "exempt the binary from MPROTECT (setfattr -n user.pax.flags -v m BINARY, or paxctl-ng -m)",
    "pax-pageexec": "exempt the binary from PAGEEXEC (setfattr -n user.pax.flags -v p BINARY)",
    "selinux-execmem": "allow execmem for the domain (setsebool -P deny_execmem off on Fedora, allow_execmem on on Debian, or a policy module)",
    "selinux-execheap": "allow execheap for the domain",
    "selinux-execstack": "allow execstack for the domain",
    "selinux-execmod": "allow execmod for the file type",
    "freebsd-wx": "mark the binary with elfctl -e +wxneeded, or set kern.elf64.allow_wx=1",
    "hardenedbsd-pageexec": "hbsdcontrol pax disable pageexec BINARY",
    "hardenedbsd-mprotect": "hbsdcontrol pax disable mprotect BINARY",
    "netbsd-pax-mprotect": "paxctl +m BINARY",
    "openbsd-wx": "link with -z wxneeded and run from a wxallowed mount",
    "noexec-mount": "point TMPDIR at a directory on a mount without noexec",
}

STRATEGIES = [
    ("rwx_mapping", ("map_rwx",), ["HotSpot code cache", "PyPy JIT"],
     "map the code buffer RWX and write and run it in place"),
    ("wx_flip", ("flip_rw_rx",), ["LuaJIT", "V8", "SpiderMonkey", "Wasmtime"],
     "write code into RW memory, then mprotect it RX"),
    ("dual_mapping", ("dual_map_memfd", "dual_map_shm", "dual_map_file"),
     [".NET (memfd on Linux, SHM_ANON on FreeBSD)", "libffi closures (fallback)"],
     "map one shared object twice: write through an RW view, run from an RX view"),
    ("code_repatching", ("repatch_rx", "patch_rwx"), ["inline caches", "debugger breakpoints"],
     "change code that already ran: flip it RX->RW->RX (repatch_rx) or patch it while RWX (patch_rwx)"),
]

_STEP = re.compile(r"^(mmap|mprotect)_(?:file_)?(rwx|rw|rx)")


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


class Op:
    """The operation a probe was doing when it failed."""

    def __init__(self, probe_id, result):
        self.probe = probe_id
        self.step = result.get("step") or ""
        self.memory = PROBE_MEMORY.get(probe_id)
        self.call = None
        self.before = None
        self.after = None
        m = _STEP.match(self.step)
        if m:
            self.call, self.after = m.group(1), m.group(2)
        elif self.step.startswith("call"):
            self.call = "call"
        elif self.step == "open":
            self.call = "open"
        else:
            self.call = self.step or None
        if probe_id == "read_implies_exec" and self.call == "mmap":
            self.after = "rwx"    # the personality makes the kernel add X to the RW request
        if self.call == "mprotect":
            self.before = _perms_before(result.get("steps") or [], self.step)
            if self.before is None and self.memory in ("heap", "stack"):
                self.before = "rw"

    @property
    def wants_x(self):
        return bool(self.after) and "x" in self.after

    @property
    def w_and_x(self):
        return bool(self.after) and "w" in self.after and "x" in self.after

    @property
    def gains_x(self):
        return self.wants_x and self.call == "mprotect" and (self.before is None or "x" not in self.before)

    @property
    def x_to_w(self):
        return self.call == "mprotect" and bool(self.before) and "x" in self.before and "w" in self.after

    @property
    def noop_x(self):
        return self.call == "mprotect" and self.before == self.after and self.wants_x

    def describe(self):
        if self.call == "mprotect":
            return "%s (%s -> %s)" % (self.step, _show(self.before), _show(self.after))
        return self.step or "an unknown step"


def _perms_before(steps, failing):
    """Permissions of the mapping before the failing step (from the steps' perms)."""
    upto = steps[:-1] if steps and steps[-1].get("name") == failing else steps
    last = next((s["perms"] for s in reversed(upto) if s.get("perms")), None)
    if last is None:
        return None
    return "".join(c for c in last[:3] if c != "-")


def _show(perms):
    if not perms:
        return "?"
    return "".join(c if c in perms else "-" for c in "rwx")


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
        role = PATH_ROLE.get(op.probe)
        if role == "shm" and f.os == "freebsd":
            return INACTIVE, "FreeBSD's shm objects (SHM_ANON) live in no file system"
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


# --- which mechanisms can produce an observation ------------------------------------------


def candidates(obs, op, f):
    """[(mechanism, behaviour sentence)] whose refusal rules match."""
    out = []
    err, sig = obs.get("errno_name"), obs.get("signal")
    denied = obs.get("outcome") == "denied" and not obs.get("exec_dropped")
    dropped = bool(obs.get("exec_dropped"))
    what = op.describe()

    def add(mech, text):
        oses = MECH_OSES.get(mech)
        if oses is None or f.os is None or f.os in oses:
            out.append((mech, text))

    if sig in ("SIGSEGV", "SIGBUS") and op.call == "call" and op.probe in NON_X_CODE:
        add("nx", "running code from %s memory that was never made executable ended in %s"
            % ({"anon": "plain RW", "heap": "heap", "stack": "stack"}[op.memory], sig))
    if sig == "SIGKILL" and op.call == "call":
        add("pax-pageexec", "running the code ended in SIGKILL, which is how PaX PAGEEXEC stops "
                            "execution of non-executable memory")
    if sig == "SIGSYS":
        add("seccomp", "%s ended the process with SIGSYS: a seccomp filter's kill action" % what)
    if sig == "SIGABRT" and op.call in ("mmap", "mprotect") and op.w_and_x:
        add("openbsd-wx", "%s asked for W|X and the process aborted (kern.wxabort=1)" % what)

    if dropped:
        add("hardenedbsd-pageexec", "%s succeeded but the mapping has no X: HardenedBSD PAGEEXEC "
                                    "drops PROT_EXEC silently" % what)
        add("pax-mprotect", "%s succeeded but the mapping has no X: PaX MPROTECT in "
                            "MPROTECT_COMPAT mode drops PROT_EXEC silently" % what)
        add("netbsd-pax-mprotect", "%s succeeded without X: NetBSD before 8 dropped PROT_EXEC "
                                   "from W|X requests" % what)

    if denied and op.call in ("mmap", "mprotect") and (op.wants_x or op.x_to_w):
        if err == "EACCES":
            if (op.call == "mmap" and op.w_and_x) or (op.call == "mprotect" and (op.w_and_x or op.gains_x)):
                add("mdwe", "%s refused with EACCES: MDWE refuses W|X mappings and mappings "
                            "gaining X" % what)
            if op.call == "mprotect" and (op.gains_x or op.x_to_w) and op.memory in (
                    "anon", "heap", "stack", "private_file"):
                add("pax-mprotect", "%s refused with EACCES: PaX MPROTECT refuses adding X to a "
                                    "mapping and making an executable mapping writable" % what)
            if op.wants_x and (op.memory in ("anon", "heap", "stack") or (
                    op.memory == "private_file" and op.call == "mmap" and op.w_and_x)):
                add("selinux-execmem", "%s refused with EACCES: SELinux execmem covers any "
                                       "PROT_EXEC on anonymous memory" % what)
            if op.memory == "heap" and op.gains_x:
                add("selinux-execheap", "%s on the heap refused with EACCES" % what)
            if op.memory == "stack" and op.gains_x:
                add("selinux-execstack", "%s on the stack refused with EACCES" % what)
            if op.memory == "private_file" and op.call == "mprotect" and op.gains_x:
                add("selinux-execmod", "%s on a modified private file mapping refused with "
                                       "EACCES: SELinux execmod" % what)
            if op.memory in ("shm", "file", "private_file") and op.call == "mprotect" and op.gains_x:
                add("noexec-mount", "%s of a file mapping refused with EACCES, as on a noexec "
                                    "mount" % what)
            if op.w_and_x:
                add("freebsd-wx", "%s asked for W and X together and was refused with EACCES" % what)
            if op.call == "mprotect" and (op.gains_x or op.x_to_w):
                add("hardenedbsd-mprotect", "%s refused: HardenedBSD MPROTECT refuses W<->X "
                                            "changes" % what)
                add("hardenedbsd-pageexec", "%s refused: HardenedBSD PAGEEXEC removes X from the "
                                            "maximum protection of writable mappings" % what)
            if op.w_and_x or op.gains_x or op.x_to_w:
                add("netbsd-pax-mprotect", "%s refused with EACCES: NetBSD PaX MPROTECT keeps a "
                                           "mapping either writable or executable" % what)
        elif err == "EPERM":
            if (op.call == "mmap" and op.w_and_x) or (op.call == "mprotect" and op.wants_x):
                add("seccomp", "%s refused with EPERM: systemd's MemoryDenyWriteExecute= filter "
                               "refuses W|X mmap and any mprotect with X" % what)
            if op.call == "mmap" and op.w_and_x and op.memory == "anon":
                add("pax-mprotect", "%s refused with EPERM: PaX MPROTECT refuses W|X mmap" % what)
            if op.call == "mmap" and op.wants_x and op.memory in ("shm", "file", "private_file"):
                add("noexec-mount", "%s refused with EPERM: PROT_EXEC mappings of files on a "
                                    "noexec mount are refused" % what)
            if op.call == "mprotect" and (op.gains_x or op.x_to_w):
                add("hardenedbsd-mprotect", "%s refused with EPERM: HardenedBSD MPROTECT" % what)
        elif err in ("ENOTSUP", "EOPNOTSUPP") and op.w_and_x:
            add("openbsd-wx", "%s asked for W|X and was refused with %s: OpenBSD W^X" % (what, err))
    if denied and op.call == "open" and op.probe == "dual_map_memfd" and err == "EACCES":
        add("memfd-noexec", "memfd_create refused with EACCES: vm.memfd_noexec=2 refuses "
                            "executable memfds")
    if denied and op.call == "personality" and err == "EPERM":
        add("seccomp", "personality() refused with EPERM: systemd's LockPersonality= filter "
                       "refuses changing the execution domain")
    return out


def attribute_probe(probe_id, result, f):
    """The attribution list of one probe result (None for allowed/skipped)."""
    outcome = result.get("outcome")
    if outcome in ("allowed", "skipped", None):
        return None
    if outcome == "timeout":
        return [_unknown(["no result within the timeout at step %s: a hang, not a refusal"
                          % (result.get("step") or "?")])]
    if outcome == "error":
        return [_unknown(["memprobe could not run the probe: %s" % (result.get("detail") or "no detail")])]
    if outcome == "wrong_result":
        return [_unknown(["the code ran but returned %r instead of %r: a stale instruction cache or "
                          "a broken mapping, not a policy refusal" % (result.get("value"),
                                                                       result.get("expected"))])]
    op = Op(probe_id, result)
    found, excluded = [], []
    for mech, behaviour in candidates(result, op, f):
        state, det = status_of(mech, f, op)
        evidence = [behaviour]
        if det:
            evidence.append(det)
        confidence = {ACTIVE: "confirmed", UNSURE: "likely"}.get(state)
        if state == INACTIVE:
            excluded.append("not %s: %s" % (mech, det))
            continue
        confidence = _refine(mech, confidence, result, op, f, evidence)
        if confidence is None:
            excluded.append("not %s: %s" % (mech, evidence[-1]))
            continue
        if mech.startswith("pax-"):
            scope = _pax_scope(f)
            if scope:
                evidence.append(scope)
        found.append({"mechanism": mech, "confidence": confidence, "evidence": evidence})
    if not found:
        return [_unknown([_observation(result, op)] + excluded)]
    order = {"confirmed": 0, "likely": 1, "unknown": 2}
    found.sort(key=lambda a: order[a["confidence"]])
    return found


def _refine(mech, confidence, result, op, f, evidence):
    """Cross-probe evidence: confidence, or None to drop the candidate."""
    if mech == "seccomp":
        if result.get("signal") == "SIGSYS":
            return confidence
        noop = f.noop_refused()
        if noop is not None and op.probe != "mprotect_rx_noop":
            evidence.append("mprotect_rx_noop (a no-op RX->RX mprotect) is refused too, which only "
                            "a seccomp filter does")
        elif f.outcome("mprotect_rx_noop") == "allowed" and op.call == "mprotect":
            evidence.append("but a no-op RX->RX mprotect is allowed, unlike under systemd's filter")
        # The filter cannot be read, so an errno alone never confirms it.
        return "likely"
    if mech == "selinux-execmem":
        refusing = _execmem_boolean(f.policy("selinux").get("booleans") or {})
        if refusing:
            evidence.append(refusing)
        denied_by = f.execmem_denied()
        if denied_by and denied_by != op.probe:
            evidence.append("%s (an anonymous RX mmap, which nothing but SELinux execmem "
                            "refuses) is refused too" % denied_by)
            return "confirmed" if confidence == "confirmed" else "likely"
        if denied_by == op.probe:
            return confidence
        if f.execmem_allowed():
            evidence.append("map_rx (an anonymous RX mmap) is allowed, so execmem is granted")
            return None
        return confidence if refusing else ("likely" if confidence else confidence)
    if mech in ("selinux-execheap", "selinux-execstack", "selinux-execmod"):
        booleans = f.policy("selinux").get("booleans") or {}
        # Fedora's policy names it selinuxuser_X, Debian's reference policy allow_X.
        name = next((n for n in ("selinuxuser_", "allow_") if n + mech[8:] in booleans), "") + mech[8:]
        if confidence == "confirmed" and f.execmem_allowed() and booleans.get(name) is False:
            evidence.append("the %s boolean is off and execmem is granted" % name)
            return "confirmed"
        return "likely"
    if mech == "pax-mprotect" and result.get("exec_dropped"):
        opts = (f.policy("kernel_config").get("options") or {})
        if confidence == "confirmed" and not opts.get("CONFIG_PAX_MPROTECT_COMPAT"):
            return "likely"
    return confidence


def _execmem_boolean(booleans):
    """The boolean that denies execmem, as evidence: Fedora's policy has deny_execmem
    (on: denied), Debian's reference policy allow_execmem (off: denied)."""
    for name, denying in (("deny_execmem", True), ("allow_execmem", False)):
        if booleans.get(name) is denying:
            return "the %s boolean is %s" % (name, "on" if denying else "off")
    return None


def _unknown(evidence):
    return {"mechanism": "unknown", "confidence": "unknown", "evidence": evidence}


def _observation(result, op):
    outcome = result.get("outcome")
    if result.get("exec_dropped"):
        return "%s succeeded but PROT_EXEC was silently dropped" % op.describe()
    if outcome == "denied":
        return "%s refused with %s, which no detected mechanism explains" % (
            op.describe(), result.get("errno_name"))
    if outcome in ("crashed", "killed"):
        return "%s at step %s, which no detected mechanism explains" % (result.get("signal"), op.describe())
    return "%s at %s" % (outcome, op.describe())


# --- strategies -------------------------------------------------------------------------


def _verdict(result):
    if not isinstance(result, dict):
        return "unknown"
    outcome = result.get("outcome")
    if outcome == "allowed":
        return "works"
    if outcome in ("denied", "crashed", "killed"):
        return "blocked"
    return "unknown"


def _mechs(result):
    out = []
    for a in result.get("attribution") or ():
        if a["mechanism"] != "unknown" and a["confidence"] in ("confirmed", "likely") and a["mechanism"] not in out:
            out.append(a["mechanism"])
    if not out and result.get("attribution"):
        out.append("unknown")
    return out


def strategies(report):
    probes = report.get("probes") or {}
    out = {}
    for name, ids, examples, how in STRATEGIES:
        present = [(i, probes[i]) for i in ids if isinstance(probes.get(i), dict)]
        verdicts = {i: _verdict(r) for i, r in present}
        blocked_by = []
        for i, r in present:
            if verdicts[i] == "blocked":
                for m in _mechs(r):
                    if m not in blocked_by:
                        blocked_by.append(m)
        if not present:
            verdict = "unknown"
        elif "works" in verdicts.values():
            verdict = "works"
        elif all(v == "blocked" for v in verdicts.values()):
            verdict = "blocked"
        else:
            verdict = "unknown"
        entry = {"verdict": verdict, "blocked_by": blocked_by if verdict != "works" else [],
                 "probes": [i for i, _ in present], "examples": list(examples),
                 "detail": _strategy_detail(name, how, present, verdicts)}
        if name == "dual_mapping":
            entry["variants"] = {i.replace("dual_map_", ""): verdicts[i] for i, _ in present}
        out[name] = entry
    return out


def _strategy_detail(name, how, present, verdicts):
    if not present:
        return "%s: not probed" % how
    parts = []
    for i, r in present:
        v = verdicts[i]
        if v == "works":
            parts.append("%s works" % i)
        elif v == "blocked":
            mechs = ", ".join("%s (%s)" % (a["mechanism"], a["confidence"])
                              for a in r.get("attribution") or ()) or "not attributed"
            parts.append("%s %s at %s: %s" % (i, r.get("outcome"), r.get("step"), mechs))
        else:
            parts.append("%s %s%s" % (i, r.get("outcome"), (": " + r["detail"]) if r.get("detail") else ""))
    return "%s. %s" % (how[0].upper() + how[1:], "; ".join(parts))


def recommendation(report, strats=None):
    """One sentence for this host, from the strategy verdicts."""
    strats = strats or report.get("strategies") or strategies(report)
    wx, dual, rwx = strats.get("wx_flip", {}), strats.get("dual_mapping", {}), strats.get("rwx_mapping", {})
    scope = _scope_suffix(report)
    if wx.get("verdict") == "works":
        tail = ""
        if rwx.get("verdict") == "blocked":
            tail = ", while RWX mappings are blocked by %s" % _names(rwx["blocked_by"])
        return ("Use W^X flipping: write code into RW memory, then mprotect it RX (as LuaJIT and V8 do); "
                "it works here%s%s." % (tail, scope))
    if dual.get("verdict") == "works":
        variants = dual.get("variants") or {}
        via = next((v for v in ("memfd", "shm", "file") if variants.get(v) == "works"), None)
        how = {"memfd": "memfd_create", "shm": "a POSIX shared-memory object (shm_open)",
               "file": "a temporary file"}.get(via, "a shared object")
        why = ("flipping is blocked by %s" % _names(wx.get("blocked_by"))) if wx.get("verdict") == "blocked" \
            else "flipping could not be checked"
        return ("Use double mapping through %s (write through an RW view, run from an RX view of the "
                "same memory): %s%s." % (how, why, scope))
    if rwx.get("verdict") == "works":
        return ("Only RWX mappings work here (flipping and double mapping are %s): map the code "
                "buffer RWX%s." % ("blocked" if wx.get("verdict") == "blocked" else "not confirmed", scope))
    verdicts = [s.get("verdict") for s in (wx, dual, rwx)]
    if all(v == "blocked" for v in verdicts):
        mechs = []
        for s in (wx, dual, rwx):
            for m in s.get("blocked_by") or ():
                if m not in mechs:
                    mechs.append(m)
        hints = [FIX_HINTS[m] for m in mechs if m in FIX_HINTS]
        return ("No way of loading code at run time works for this process (blocked by %s): use an "
                "interpreter or ahead-of-time compiled code%s%s." % (
                    _names(mechs), (", or lift the restriction: " + "; ".join(hints[:2])) if hints else "",
                    scope))
    return ("Not enough evidence to recommend a strategy: W^X flipping is %s, double mapping %s and RWX "
            "mapping %s%s." % (wx.get("verdict", "unknown"), dual.get("verdict", "unknown"),
                               rwx.get("verdict", "unknown"), scope))


def _names(mechs):
    mechs = [m for m in (mechs or ()) if m and m != "unknown"]
    if not mechs:
        return "an unidentified mechanism"
    return ", ".join("%s [%s]" % (MECHANISMS[m], m) if m in MECHANISMS else m for m in mechs)


def _scope_suffix(report):
    pax = ((report.get("policies") or {}).get("pax") or {})
    marks = pax.get("markings") or {}
    if pax.get("state") in ("on", "off", "no_mm") and marks.get("source"):
        return " (for programs marked like %s; unmarked programs get the kernel's PaX defaults)" % (
            pax.get("interpreter") or "the interpreter")
    return ""


# --- entry point -----------------------------------------------------------------------


def attribute(report):
    """Add per-probe `attribution`, top-level `strategies` and `recommendation` in place."""
    f = Facts(report)
    for probe_id, result in (report.get("probes") or {}).items():
        if not isinstance(result, dict):
            continue
        found = attribute_probe(probe_id, result, f)
        if found is not None:
            result["attribution"] = found
        else:
            result.pop("attribution", None)
    strats = strategies(report)
    report["strategies"] = strats
    report["recommendation"] = recommendation(report, strats)
