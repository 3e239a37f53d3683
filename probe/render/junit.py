"""JUnit XML for `memprobe run --junit` (one test case per probe) and `memprobe check
--junit` (one per expectation), in the common Ant/Surefire dialect that CI systems read.

Every string may come from an untrusted report or expectations file: it passes
through the collector's one escaping function (probe.report.load.clean: control, bidi
and line-separator characters become visible escapes, so a value cannot forge a
line in a CI log), then xml_text() as a last guard for what XML 1.0 cannot
carry; ElementTree escapes the rest.
"""

import re

from probe.report.load import clean

# Characters XML 1.0 forbids even as references.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value, limit=2000):
    text = "" if value is None else str(value)
    text = _INVALID_XML.sub("\ufffd", text)
    if limit and len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def _field(value, limit=2000):
    """One escaped line of XML text. A list or tuple is several lines, each escaped: the
    line breaks between them are memprobe's own, never a file's."""
    if isinstance(value, (list, tuple)):
        return xml_text("\n".join(clean("" if line is None else line, limit) for line in value), 0)
    return xml_text(clean("" if value is None else value, limit), 0)


def render(suite_name, cases, properties=None):
    """XML text for one test suite.

    cases: dicts with classname, name, status ('passed', 'failure', 'error' or
    'skipped'), message (one line) and optional output (a string, or a list of
    lines) and time (seconds).
    """
    import xml.etree.ElementTree as ET

    counts = {"failure": 0, "error": 0, "skipped": 0}
    for case in cases:
        if case["status"] in counts:
            counts[case["status"]] += 1
    total_time = sum(float(c.get("time") or 0) for c in cases)
    root = ET.Element("testsuites", {
        "name": _field(suite_name), "tests": str(len(cases)), "failures": str(counts["failure"]),
        "errors": str(counts["error"]), "skipped": str(counts["skipped"]), "time": "%.3f" % total_time})
    suite = ET.SubElement(root, "testsuite", {
        "name": _field(suite_name), "tests": str(len(cases)), "failures": str(counts["failure"]),
        "errors": str(counts["error"]), "skipped": str(counts["skipped"]), "time": "%.3f" % total_time})
    if properties:
        props = ET.SubElement(suite, "properties")
        for key, value in properties.items():
            ET.SubElement(props, "property", {"name": _field(key, 200), "value": _field(value, 500)})
    for case in cases:
        element = ET.SubElement(suite, "testcase", {
            "classname": _field(case["classname"], 300), "name": _field(case["name"], 300),
            "time": "%.3f" % float(case.get("time") or 0)})
        status = case["status"]
        message = _field(case.get("message"), 500)
        if status in ("failure", "error"):
            child = ET.SubElement(element, status, {"message": message, "type": _field(case.get("type") or status)})
            child.text = _field(case.get("output")) if case.get("output") else message
        elif status == "skipped":
            ET.SubElement(element, "skipped", {"message": message})
        if case.get("output") and status == "passed":
            out = ET.SubElement(element, "system-out")
            out.text = _field(case["output"])
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


def classname_for(prefix, report):
    """prefix.<host slug>: CI tools split class names at dots, so the label loses its own."""
    from probe.render.text import host_label

    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", host_label(report)).strip("_")
    return "%s.%s" % (prefix, slug or "host")


def run_cases(report):
    """One case per probe: error/timeout are errors, skipped is skipped, the rest pass.

    A run's JUnit says what happened on the host, not whether it was wanted: a
    denial is a finding, not a failure (gate on findings with `memprobe check`).
    """
    from probe.render.text import probe_detail

    cases = []
    classname = classname_for("memprobe.run", report)
    for pid, result in (report.get("probes") or {}).items():
        outcome = result.get("outcome")
        detail = probe_detail(result)
        message = "%s: %s" % (outcome, detail) if detail else str(outcome)
        status = {"error": "error", "timeout": "error", "skipped": "skipped"}.get(outcome, "passed")
        duration = result.get("duration_ms")
        cases.append({"classname": classname, "name": str(pid), "status": status, "message": message,
                      "type": outcome, "output": [message, result.get("detail") or ""],
                      "time": (duration / 1000.0) if isinstance(duration, (int, float)) else 0})
    return cases


def run_junit(report):
    """JUnit XML text for a `memprobe run` report (what `run --junit PATH` writes)."""
    from probe.render.text import host_label

    return render("memprobe run " + host_label(report), run_cases(report),
                  _properties(report))


def _properties(report):
    host = report.get("host") or {}
    tool = report.get("tool") or {}
    props = {"memprobe.version": tool.get("version"), "generated_at": report.get("generated_at")}
    for key in ("os", "hostname", "kernel_release", "arch", "machine"):
        props["host." + key] = host.get(key)
    return {k: v for k, v in props.items() if v is not None}
