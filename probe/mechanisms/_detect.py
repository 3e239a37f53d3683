"""Running the policy detectors: each mechanism module's, and the fact detectors of
probe.policy.facts, in their declared order."""

from probe.policy import Source, Unavailable, unknown
from probe.policy.facts import FACT_DETECTORS


def detector_registry(modules: tuple) -> list:
    """Every detector instance, ordered by its `order` (the order of a report's `policies`)."""
    found = list(FACT_DETECTORS) + [module.DETECTOR() for module in modules]
    return sorted(found, key=lambda det: det.order)


def run(detectors: list, root: "str | None" = None, os_name: "str | None" = None,
        env: "dict | None" = None, executable: "str | None" = None,
        include_inapplicable: bool = False) -> dict:
    """{name: result} of every detector that applies. Never raises.

    root: a fixture tree to read instead of the live host. os_name: override the OS
    (default: the host's, or the fixture's uname.txt). env: the environment that decides
    $TMPDIR (default os.environ, or the fixture's proc/self/environ). executable: the
    interpreter whose PaX markings count (default the running one).
    include_inapplicable: also list detectors for other OSes, with state
    `not_applicable` and the reason they do not apply.
    """
    try:
        src = Source(root, os_name, env, executable)
    except Exception as exc:  # noqa: BLE001 - detect() never raises
        return {"_source": unknown("cannot set up the policy sources: %s: %s"
                                   % (type(exc).__name__, exc))}
    out = {}
    for det in detectors:
        why_not = det.applies(src.os_name)
        if why_not is not None:
            if include_inapplicable:
                out[det.name] = {"state": "not_applicable", "reason": why_not}
            continue
        out[det.name] = _read(det, src)
    return out


def _read(det, src):
    try:
        return det.read(src)
    except Unavailable as exc:
        return unknown(str(exc))
    except Exception as exc:  # noqa: BLE001 - one broken detector must not sink the rest
        return unknown("memprobe could not evaluate this source: %s: %s"
                       % (type(exc).__name__, exc))
