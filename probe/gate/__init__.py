"""The check decision: expectations read, resolved against a report and evaluated.

    load_expectations(path), parse_expectations(doc), resolve(expectations, report),
    check(expectations, report) -> [(expectation, verdict, found)], exit_status(results)
"""

from probe.gate.evaluate import check, evaluate, exit_status  # noqa: F401
from probe.gate.expect import load_expectations, parse_expectations, resolve  # noqa: F401
