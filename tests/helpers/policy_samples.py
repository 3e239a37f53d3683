"""Probe results in the engine's shape, from a short form, for policy and attribution tests.

    expand("flip_rw_rx", "denied mprotect_rx EACCES")

Short forms: "allowed", "skipped", "denied STEP ERRNO", "crashed STEP SIGNAL",
"killed STEP SIGKILL", "dropped STEP PERMS" (PROT_EXEC silently dropped).
"""

import errno
import signal

# The steps each probe announces (probe/engine/probes.py) and the permissions the mapping
# has after each, as the engine records them.
STEPS = {
    "exec_rw": [("mmap_rw", "rw-p"), ("write", None), ("call", None)],
    "flip_rw_rx": [("mmap_rw", "rw-p"), ("write", None), ("mprotect_rx", "r-xp"), ("call", None)],
    "map_rwx": [("mmap_rwx", "rwxp"), ("write", None), ("call", None)],
    "flip_rw_rwx": [("mmap_rw", "rw-p"), ("mprotect_rwx", "rwxp"), ("write", None), ("call", None)],
    "map_rx": [("mmap_rx", "r-xp")],
    "mprotect_rx_noop": [("mmap_rx", "r-xp"), ("mprotect_rx", "r-xp")],
    "repatch_rx": [("mmap_rw", "rw-p"), ("write", None), ("mprotect_rx", "r-xp"), ("call_original", None),
                   ("mprotect_rw", "rw-p"), ("patch", None), ("mprotect_rx_again", "r-xp"), ("call", None)],
    "patch_rwx": [("mmap_rw", "rw-p"), ("write", None), ("mprotect_rx", "r-xp"), ("call_original", None),
                  ("mprotect_rwx", "rwxp"), ("patch", None), ("call", None)],
    "exec_heap": [("malloc", None), ("write", None), ("call", None)],
    "flip_heap": [("malloc", None), ("mprotect_rwx", "rwxp"), ("write", None), ("call", None)],
    "exec_stack": [("find_stack", None), ("write", None), ("call", None)],
    "flip_stack": [("find_stack", None), ("mprotect_rwx", "rwxp"), ("write", None), ("call", None)],
    "patch_file_text": [("open", None), ("mmap_file_rx", "r-xp"), ("call_original", None),
                        ("mprotect_rw", "rw-p"), ("patch", None), ("mprotect_rx_again", "r-xp"),
                        ("call", None)],
    "read_implies_exec": [("personality", None), ("mmap_rw", "rwxp"), ("write", None), ("call", None)],
}
for _v in ("memfd", "shm", "file"):
    STEPS["dual_map_" + _v] = [("open", None), ("mmap_rw_view", "rw-s"), ("mmap_rx_view", "r-xs"),
                               ("write", None), ("call", None)]
EXPECTED_VALUE = {"map_rx": None, "mprotect_rx_noop": None, "repatch_rx": 42, "patch_rwx": 42,
                  "patch_file_text": 42}


def expand(probe_id, short):
    """A probe result as the engine reports it, from the fixture's short form."""
    words = short.split()
    outcome = words[0]
    seq = STEPS[probe_id]
    expected = EXPECTED_VALUE.get(probe_id, 23)
    r = {"outcome": outcome, "step": None, "errno": None, "errno_name": None, "signal": None,
         "signal_number": None, "value": None, "expected": expected, "exec_dropped": False,
         "duration_ms": 1.0, "detail": short, "steps": []}
    if outcome == "skipped":
        return r
    if outcome == "allowed":
        upto, last_perms = len(seq), True
        r["value"] = expected
    else:
        step = words[1]
        upto = [name for name, _ in seq].index(step) + 1
        last_perms = False
    steps = [{"name": n, "perms": p} if p else {"name": n} for n, p in seq[:upto]]
    r["step"] = steps[-1]["name"]
    if outcome == "denied":
        r.update(errno_name=words[2], errno=getattr(errno, words[2], 0))
    elif outcome in ("crashed", "killed"):
        r.update(signal=words[2], signal_number=int(getattr(signal, words[2])))
    elif outcome == "dropped":
        r.update(outcome="denied", exec_dropped=True)
        steps[-1]["perms"] = words[2]
        last_perms = True
    if not last_perms:
        steps[-1].pop("perms", None)
    r["steps"] = steps
    return r
