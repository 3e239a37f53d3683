"""The words a report uses, defined once: every other module imports them from here.

Importing this module imports nothing: `import probe` and the probe children stay cheap.
"""

# The report format. A reader accepts the versions in SUPPORTED_SCHEMA_VERSIONS; the
# schema file probe/report/schema/report-v<N>.json describes each.
SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = (SCHEMA_VERSION,)

# How a probe ended.
OUTCOMES = ("allowed", "denied", "crashed", "killed", "timeout", "wrong_result", "skipped", "error")
# Probe outcomes that mean the host refused the operation.
BLOCKING_OUTCOMES = ("denied", "crashed", "killed")

# The state of one capability in the report's summary.
STATES = ("enforced", "not_enforced", "works", "blocked", "broken", "unknown")

# What one probe outcome says of the capability or strategy it feeds; any other outcome
# (timeout, skipped, error) says nothing: "unknown". A code that ran but returned the
# wrong value is "broken" everywhere: it ran, so nothing refused it.
OUTCOME_STATES = {"allowed": "works", "denied": "blocked", "crashed": "blocked", "killed": "blocked",
                  "wrong_result": "broken"}


def outcome_state(outcome: "str | None", sigkill_blocks: bool = True) -> str:
    """works/blocked/broken/unknown of one probe outcome. A SIGKILL blocks only where the
    caller knows a policy kills (PaX PAGEEXEC); anywhere else it proves nothing."""
    if outcome == "killed" and not sigkill_blocks:
        return "unknown"
    return OUTCOME_STATES.get(outcome, "unknown")


# The summary's capabilities, in the order the report and the collectors show them. The
# probes feeding each declare it (probe.engine.probes: `capability`).
CAPABILITIES = (
    "nx", "heap_nx", "stack_nx", "wx_flip", "rwx_mapping", "rwx_flip", "rx_mapping", "dual_mapping",
    "code_repatching", "rwx_patching", "file_text_patching", "heap_flip", "stack_flip",
    "read_implies_exec",
)

# The code-loading strategies the report judges, and the verdicts it gives them.
STRATEGIES = ("rwx_mapping", "wx_flip", "rwx_flip", "dual_mapping", "code_repatching")
STRATEGY_VERDICTS = ("works", "blocked", "unknown")

# How sure an attribution is that a mechanism refused a probe.
CONFIDENCES = ("confirmed", "likely", "unknown")

# The memory a probe works on (the rules of SELinux, noexec mounts and MDWE differ).
MEMORY_KINDS = ("anon", "memfd", "shm", "file", "heap", "stack", "private_file")

# States a policy detector may report (documented in the schema).
POLICY_STATES = ("on", "off", "enforcing", "permissive", "disabled", "strict", "filter", "opt_in",
                 "no_mm", "absent", "unsupported", "found", "unknown", "not_applicable")

# What `memprobe check` and the API's check() decide.
HOLDS, FAILS, UNDECIDED = "holds", "fails", "undecided"
