"""Attribution: which mechanism refused each probe, and what a JIT should do here.

    attribute(report) -> None

Works from the report dict alone (host, process, policies, probes): adds `attribution`
to every probe whose outcome is not `allowed` (or `skipped`), and the top-level
`strategies` and `recommendation`. Pure functions; nothing here touches the host.

The rules come from what each mechanism refuses and how (the README's mechanism table):
a mechanism is a candidate when the refused operation and the errno or signal match
what it does; the policy detectors then make it `confirmed` (the detector says it is
active), drop it (the detector says it is off) or leave it `likely` (the detector
could not tell). Probes that separate mechanisms (map_rx, mprotect_rx_noop) refine it.
"""

import re

from probe.mechanisms import (  # noqa: F401 - re-exported: the attribution API
    ACTIVE, INACTIVE, MECH_OSES, MECHANISMS, PATH_ROLE, UNSURE, Facts, status_of, _pax_scope)
from probe.attribution.strategies import (  # noqa: F401 - re-exported: the attribution API
    FIX_HINTS, STRATEGIES, recommendation, strategies)

# What memory each probe works on: the rules of SELinux, noexec mounts and MDWE differ
# for anonymous memory, heap, stack and file-backed mappings.
PROBE_MEMORY = {
    "exec_rw": "anon", "flip_rw_rx": "anon", "map_rwx": "anon", "flip_rw_rwx": "anon",
    "map_rx": "anon", "mprotect_rx_noop": "anon", "repatch_rx": "anon", "patch_rwx": "anon",
    "dual_map_memfd": "memfd", "dual_map_shm": "shm", "dual_map_file": "file",
    "exec_heap": "heap", "flip_heap": "heap", "exec_stack": "stack", "flip_stack": "stack",
    "patch_file_text": "private_file", "read_implies_exec": "anon",
}
# The call a probe's `open` step makes, where it is the operation under test.
OPEN_CALL = {"dual_map_memfd": "memfd_create", "dual_map_shm": "shm_open"}
# Probes that run code from memory that was never made executable.
NON_X_CODE = ("exec_rw", "exec_heap", "exec_stack")

_STEP = re.compile(r"^(mmap|mprotect)_(?:file_)?(rwx|rw|rx)")


# --- the operation that failed ----------------------------------------------------------


class Op:
    """The operation a probe was doing when it failed."""

    def __init__(self, probe_id, result):
        self.probe = probe_id
        self.step = result.get("step") or ""
        self.memory = PROBE_MEMORY.get(probe_id)
        # repatch_rx / patch_rwx map their live code from a memfd or file where the flip
        # is refused: the later steps then work on a private file mapping.
        self.live_code = result.get("live_code")
        if self.live_code in ("memfd", "file"):
            self.memory = "private_file"
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
        if self.call == "open" and self.probe in OPEN_CALL:
            return "%s (%s)" % (self.step, OPEN_CALL[self.probe])
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
    if denied and err == "ENOSYS":
        add("seccomp", "%s failed with ENOSYS: a seccomp filter can make a system call look "
                       "absent (a kernel without the call fails the same way)" % what)
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
                    op.memory == "private_file" and op.w_and_x)):
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


# --- entry point -----------------------------------------------------------------------


def settle_missing_calls(report, f):
    """memfd_create failing with ENOSYS where the detector says no seccomp filter is
    attached: the kernel lacks the call (before Linux 3.17), so the probe does not apply
    here. It becomes `skipped`; with a filter attached (or unknown) it stays `denied`."""
    result = (report.get("probes") or {}).get("dual_map_memfd")
    if not isinstance(result, dict) or result.get("outcome") != "denied" or \
            result.get("errno_name") != "ENOSYS" or result.get("step") != "open":
        return
    state, evidence = status_of("seccomp", f, None)
    if state == INACTIVE:
        result.update(outcome="skipped", detail="memfd_create is not implemented by this kernel "
                      "(ENOSYS) and no seccomp filter could have refused it (%s)" % evidence)


def attribute(report):
    """Add per-probe `attribution`, top-level `strategies` and `recommendation` in place
    (and refresh `summary`, where the report has one, for what settling changed)."""
    f = Facts(report)
    settle_missing_calls(report, f)
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
    if isinstance(report.get("summary"), dict) and isinstance(report.get("probes"), dict):
        from probe.attribution.summary import summarise
        report["summary"] = summarise(report["probes"], report.get("policies"))

