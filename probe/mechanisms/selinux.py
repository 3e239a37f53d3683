"""SELinux: the execmem, execheap, execstack and execmod permissions refuse PROT_EXEC on
anonymous memory, the heap, the stack and modified private file mappings with EACCES."""

from probe.mechanisms._base import ACTIVE, INACTIVE, UNSURE, Facts, Observation, Op
from probe.policy import Detector, Source, Unavailable, unknown
from probe.policy import parse as _parse

MECHANISMS = {
    "selinux-execmem": "SELinux execmem permission",
    "selinux-execheap": "SELinux execheap permission",
    "selinux-execstack": "SELinux execstack permission",
    "selinux-execmod": "SELinux execmod permission",
}
OSES = ("linux",)
FIX_HINTS = {
    "selinux-execmem": "allow execmem for the domain (setsebool -P deny_execmem off on Fedora, allow_execmem on on Debian, or a policy module)",
    "selinux-execheap": "allow execheap for the domain",
    "selinux-execstack": "allow execstack for the domain",
    "selinux-execmod": "allow execmod for the file type",
}

SELINUX_BOOLEANS = ("deny_execmem", "selinuxuser_execmod", "selinuxuser_execheap",
                    "selinuxuser_execstack", "allow_execmem", "allow_execstack", "allow_execheap",
                    "allow_execmod")


# --- detector --------------------------------------------------------------------------


def _enforce(src):
    """(selinuxfs mount, enforce file content) or (None, [reasons])."""
    reasons = []
    for candidate in ("/sys/fs/selinux", "/selinux"):
        try:
            return candidate, src.read_text(candidate + "/enforce").strip()
        except Unavailable as exc:
            reasons.append(str(exc))
    return None, reasons


def _booleans(src, mount):
    """({boolean: current value}, {boolean: pending value where it differs})."""
    current, pending = {}, {}
    for name in SELINUX_BOOLEANS:
        try:
            value = _parse.parse_selinux_bool(src.read_text("%s/booleans/%s" % (mount, name)))
        except Unavailable:
            continue
        if value is not None:
            current[name] = value[0]
            if value[1] != value[0]:
                pending[name] = value[1]
    return current, pending


class SELinux(Detector):
    name = "selinux"
    title = "SELinux"
    oses = ("linux",)
    order = 30

    def read(self, src: Source) -> dict:
        mount, enforce = _enforce(src)
        if mount is None:
            if any(r.startswith("cannot read") for r in enforce):
                return unknown("; ".join(enforce))
            return {"state": "disabled",
                    "reason": "selinuxfs is not mounted (no /sys/fs/selinux/enforce): SELinux is off"}
        if enforce not in ("0", "1"):
            return unknown("unexpected %s/enforce content %r" % (mount, enforce), mount=mount)
        out = {"state": "enforcing" if enforce == "1" else "permissive", "mount": mount,
               "context": None, "booleans": {}}
        try:
            out["context"] = _parse.parse_context(src.read_bytes("/proc/self/attr/current"))
        except Unavailable as exc:
            out["context_reason"] = str(exc)
        out["booleans"], pending = _booleans(src, mount)
        if pending:
            out["booleans_pending"] = pending
        return out


DETECTOR = SELinux


# --- attribution -----------------------------------------------------------------------


def status(mech: str, f: Facts, op: "Op | None") -> tuple:
    s = f.policy("selinux")
    state = s.get("state")
    if state == "enforcing":
        return ACTIVE, "SELinux is enforcing (context %s)" % (s.get("context") or "unknown")
    if state in ("permissive", "disabled"):
        return INACTIVE, "SELinux is %s" % state
    return UNSURE, "SELinux state unknown"


def _execmem(op):
    return op.wants_x and (op.memory in ("anon", "heap", "stack") or (
        op.memory == "private_file" and op.w_and_x))


def _execheap(op):
    return op.memory == "heap" and op.gains_x


def _execstack(op):
    return op.memory == "stack" and op.gains_x


def _execmod(op):
    return op.memory == "private_file" and op.call == "mprotect" and op.gains_x


# (rank, mechanism, whether it covers the operation, what it does with it)
_RULES = (
    (202, "selinux-execmem", _execmem,
     "{what} refused with EACCES: SELinux execmem covers any PROT_EXEC on anonymous memory"),
    (203, "selinux-execheap", _execheap, "{what} on the heap refused with EACCES"),
    (204, "selinux-execstack", _execstack, "{what} on the stack refused with EACCES"),
    (205, "selinux-execmod", _execmod,
     "{what} on a modified private file mapping refused with EACCES: SELinux execmod"),
)


def rules(obs: Observation, op: Op, f: Facts) -> list:
    """Every SELinux permission refuses with EACCES."""
    if not obs.refused(op, "EACCES"):
        return []
    return [(rank, mech, text.format(what=obs.what))
            for rank, mech, covers, text in _RULES if covers(op)]


def refine(mech: str, confidence: "str | None", result: dict, op: Op, f: Facts,
           evidence: list) -> "str | None":
    """Cross-probe evidence: confidence, or None to drop the candidate."""
    if mech == "selinux-execmem":
        return _refine_execmem(confidence, op, f, evidence)
    booleans = f.policy("selinux").get("booleans") or {}
    # Fedora's policy names it selinuxuser_X, Debian's reference policy allow_X.
    name = next((n for n in ("selinuxuser_", "allow_") if n + mech[8:] in booleans), "") + mech[8:]
    if confidence == "confirmed" and f.execmem_allowed() and booleans.get(name) is False:
        evidence.append("the %s boolean is off and execmem is granted" % name)
        return "confirmed"
    return "likely"


def _refine_execmem(confidence, op, f, evidence):
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


def _execmem_boolean(booleans):
    """The boolean that denies execmem, as evidence: Fedora's policy has deny_execmem
    (on: denied), Debian's reference policy allow_execmem (off: denied)."""
    for name, denying in (("deny_execmem", True), ("allow_execmem", False)):
        if booleans.get(name) is denying:
            return "the %s boolean is %s" % (name, "on" if denying else "off")
    return None
