"""`memprobe check --expect EXPECT.yaml [REPORT | --run]`: a CI gate.

The expectations file (YAML or JSON, untrusted like a report) maps probe ids
and capability names to what must hold:

    flip_rw_rx: allowed              # a probe outcome
    map_rwx: [denied, crashed]       # any of these outcomes
    patch_rwx: {outcome: denied, errno: EACCES, denied_by: pax-mprotect}
    nx: enforced                     # a capability state (the report's summary)
    wx_flip: works
    probes: {...}                    # the same, explicitly a probe ...
    capabilities: {...}              # ... or a capability, when a name is both

Exit status: 0 every expectation holds; 2 some does not; 3 none fails but
some could not be decided (probe skipped or errored, state unknown, probe or
capability missing from the report, no attribution to match denied_by);
1 usage or input error.
"""

import re
import sys

from probe import _output
from probe._collect import _render
from probe._collect._render import OUTCOMES, STATES, text
from probe._errors import EXIT_DIFFERENT, EXIT_OK, EXIT_UNDECIDED, InputError, OutputError, UsageError
from probe._load import type_word as _type

PROBE_KEYS = ("outcome", "errno", "signal", "step", "denied_by", "confidence")
CAPABILITY_KEYS = ("state",)
CONFIDENCES = ("confirmed", "likely", "unknown")
BLOCKING = ("denied", "crashed", "killed")
# Whole strings only (fullmatch): '$' alone would also take "EACCES\n".
_ERRNO = re.compile(r"E[A-Z0-9]+")
_SIGNAL = re.compile(r"SIG[A-Z0-9]+")
_NAME = re.compile(r"[a-z][a-z0-9_]*")

HOLDS, FAILS, UNDECIDED = "holds", "fails", "undecided"


def add_arguments(parser):
    parser.add_argument("--expect", "-e", required=True, metavar="EXPECT.yaml",
                        help="expectations file: probe id or capability -> what must hold")
    parser.add_argument("report", nargs="?", metavar="REPORT", help="report to check (YAML or JSON; '-' for stdin)")
    parser.add_argument("--run", action="store_true", help="run the probes on this host and check the result")
    parser.add_argument("--isolation", choices=("fork", "spawn"), default="fork", help="with --run: as for run")
    parser.add_argument("--timeout", type=_seconds, default=10.0, metavar="S", help="with --run: per-probe timeout")
    parser.add_argument("--save", metavar="PATH", help="with --run: also write the report (.json: JSON, else YAML)")
    parser.add_argument("--junit", metavar="PATH", help="write JUnit XML, one test case per expectation")
    parser.add_argument("--quiet", "-q", action="store_true", help="print only expectations that do not hold")
    _render.add_colour_argument(parser)


def _seconds(text):
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError("%r is not a positive number of seconds" % text)
    return value


class Expectation:
    """One line of the expectations file."""

    def __init__(self, key, path, kind=None):
        self.key = key
        self.path = path          # where in the file: 'map_rwx' or 'probes.map_rwx'
        self.kind = kind          # 'probe', 'capability' or None (flat: decided by the value)
        self.values = None        # accepted outcomes / states
        self.errno = self.signal = self.step = self.denied_by = None
        self.confidence = ("confirmed", "likely")

    def describe(self):
        """'key: what must hold', escaped: every word here comes from the expectations file."""
        parts = []
        if self.values:
            parts.append("|".join(self.values))
        for label, values in (("errno", self.errno), ("signal", self.signal), ("step", self.step),
                              ("denied_by", self.denied_by)):
            if values:
                parts.append("%s %s" % (label, "|".join(text(v, 60) for v in values)))
        return "%s: %s" % (text(self.key, 60), text(", ".join(parts), 0))


# --------------------------------------------------------------------------- the file

class ExpectationFile(list):
    """The expectations of one file, with what is needed to point at its lines."""

    def __init__(self, items, name, data):
        super().__init__(items)
        self.name = name
        self.data = data

    def error(self, problem, more=0):
        from probe import _load

        return InputError(_load.format_problem(self.name, self.data, problem, more)
                          .replace("run memprobe validate", "fix them in turn"))


def load_expectations(path):
    """Parse and check an expectations file; InputError with FILE:LINE on the first problem."""
    from probe import _load

    data = _load.read_bytes(path)
    name = "<stdin>" if path == "-" else _load.display_name(path)
    doc = _load.parse_document(data, name, fmt="json" if str(path).endswith(".json") else None)
    expectations, problems = parse_expectations(doc)
    result = ExpectationFile(expectations, name, data)
    if problems:
        raise result.error(problems[0], len(problems) - 1)
    if not expectations:
        raise InputError("%s: no expectations in the file" % name)
    return result


def parse_expectations(doc):
    """(expectations, problems) from parsed plain data."""
    problems = []
    expectations = []
    if not isinstance(doc, dict):
        return [], ["expectations: expected a mapping of probe ids / capabilities, got %s"
                    % _type(doc)]
    for key, value in doc.items():
        if key in ("probes", "capabilities"):
            if not isinstance(value, dict):
                problems.append("%s: expected a mapping, got %s" % (key, _type(value)))
                continue
            kind = "probe" if key == "probes" else "capability"
            for sub, spec in value.items():
                expectations.append(_parse_one(sub, spec, "%s.%s" % (key, text(sub, 60)), kind, problems))
        elif key == "schema_version":
            if value != 1:
                problems.append("schema_version: this memprobe reads expectations version 1")
        else:
            expectations.append(_parse_one(key, value, text(key, 60), None, problems))
    return [e for e in expectations if e is not None], problems


def _parse_one(key, spec, path, kind, problems):
    if not _NAME.fullmatch(key):
        problems.append("%s: %r is not a probe id or capability name" % (path, text(key, 60)))
        return None
    exp = Expectation(key, path, kind)
    if isinstance(spec, (str, list)):
        values = _words(spec, path, problems)
        if values is None:
            return None
        exp.values = values
    elif isinstance(spec, dict):
        allowed = PROBE_KEYS + CAPABILITY_KEYS
        for field in spec:
            if field not in allowed:
                problems.append("%s.%s: unknown field; use %s" % (path, text(field, 40), ", ".join(allowed)))
                return None
        if "state" in spec and any(f in spec for f in PROBE_KEYS):
            problems.append("%s: 'state' is for capabilities, %s for probes; not both"
                            % (path, ", ".join(f for f in PROBE_KEYS if f in spec)))
            return None
        if "state" in spec:
            exp.kind = _settle(exp, "capability", path, problems)
            exp.values = _words(spec["state"], path + ".state", problems)
        else:
            exp.kind = _settle(exp, "probe", path, problems)
            if "outcome" in spec:
                exp.values = _words(spec["outcome"], path + ".outcome", problems)
            exp.errno = _list_of(spec, "errno", path, problems, _ERRNO, "an errno name like EACCES")
            exp.signal = _list_of(spec, "signal", path, problems, _SIGNAL, "a signal name like SIGSEGV")
            exp.step = _list_of(spec, "step", path, problems, None, "a step name")
            exp.denied_by = _list_of(spec, "denied_by", path, problems, None, "a mechanism name")
            if exp.denied_by:
                exp.denied_by = tuple(_mechanism(m) for m in exp.denied_by)
            if "confidence" in spec:
                conf = _list_of(spec, "confidence", path, problems, None, "a confidence")
                if conf:
                    bad = [c for c in conf if c not in CONFIDENCES]
                    if bad:
                        problems.append("%s.confidence: %s is not one of %s"
                                        % (path, text(bad[0], 40), ", ".join(CONFIDENCES)))
                    exp.confidence = conf
                if not exp.denied_by:
                    problems.append("%s.confidence: only meaningful with denied_by" % path)
            if not (exp.values or exp.errno or exp.signal or exp.step or exp.denied_by):
                problems.append("%s: says nothing; give an outcome, errno, signal, step or denied_by" % path)
                return None
        if exp.kind is None:
            return None
    else:
        problems.append("%s: expected an outcome, a state, a list of them or a mapping, got %s"
                        % (path, _type(spec)))
        return None
    if exp.values:
        outcome_words = all(v in OUTCOMES for v in exp.values)
        state_words = all(v in STATES for v in exp.values)
        if exp.kind == "probe" and not outcome_words:
            bad = next(v for v in exp.values if v not in OUTCOMES)
            problems.append("%s: %r is not a probe outcome (%s)" % (path, text(bad, 40), ", ".join(OUTCOMES)))
            return None
        if exp.kind == "capability" and not state_words:
            bad = next(v for v in exp.values if v not in STATES)
            problems.append("%s: %r is not a capability state (%s)" % (path, text(bad, 40), ", ".join(STATES)))
            return None
        if exp.kind is None:
            if outcome_words:
                exp.kind = "probe"
            elif state_words:
                exp.kind = "capability"
            else:
                bad = [v for v in exp.values if v not in OUTCOMES + STATES]
                if bad:
                    problems.append("%s: %r is neither a probe outcome (%s) nor a capability state (%s)"
                                    % (path, text(bad[0], 40), ", ".join(OUTCOMES), ", ".join(STATES)))
                else:
                    problems.append("%s: mixes probe outcomes and capability states" % path)
                return None
    return exp


def _settle(exp, kind, path, problems):
    if exp.kind is not None and exp.kind != kind:
        problems.append("%s: fields of a %s under %ss" % (path, kind, exp.kind))
        return None
    return kind


def _words(spec, path, problems):
    items = spec if isinstance(spec, list) else [spec]
    if not items:
        problems.append("%s: empty list" % path)
        return None
    for item in items:
        if not isinstance(item, str):
            problems.append("%s: expected a word such as allowed or works, got %s" % (path, _type(item)))
            return None
    return tuple(items)


def _list_of(spec, field, path, problems, pattern, what):
    if field not in spec:
        return None
    raw = spec[field]
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for item in items:
        if field in ("errno", "signal") and isinstance(item, int) and not isinstance(item, bool) and item >= 0:
            out.append(item)
            continue
        if not isinstance(item, str) or not item.strip():
            problems.append("%s.%s: expected %s, got %s" % (path, field, what, _type(item)))
            return None
        if pattern is not None and not pattern.fullmatch(item):
            problems.append("%s.%s: %r is not %s" % (path, field, text(item, 40), what))
            return None
        out.append(item)
    if not out:
        problems.append("%s.%s: empty list" % (path, field))
        return None
    return tuple(out)


def _mechanism(name):
    """pax_mprotect, 'PaX MPROTECT' and pax-mprotect are one name."""
    return re.sub(r"[\s_]+", "-", str(name).strip().lower())


# --------------------------------------------------------------------------- names

def known_names():
    """(probe ids, capability names) this memprobe knows, for typo checks."""
    probes, capabilities = set(), set(_render.CAPABILITY_ORDER)
    try:
        from probe import _probes

        probes.update(_probes.by_id())
    except Exception:  # noqa: BLE001 - engine absent on this build: only the report's names count
        pass
    try:
        from probe import _report

        capabilities.update(c[0] for c in _report.CAPABILITIES)
    except Exception:  # noqa: BLE001
        pass
    return probes, capabilities


def resolve(expectations, report=None):
    """Decide each flat key's kind and refuse names nobody knows (a typo must not
    pass as 'undecided'). Raises InputError."""
    probes, capabilities = known_names()
    if report is not None:
        probes.update(report.get("probes") or {})
        capabilities.update(report.get("summary") or {})
    for exp in expectations:
        if exp.kind is None:
            in_probes, in_caps = exp.key in probes, exp.key in capabilities
            exp.kind = "probe" if in_probes and not in_caps else "capability" if in_caps else None
        known = probes if exp.kind == "probe" else capabilities
        if exp.kind is None or exp.key not in known:
            what = exp.kind or "probe or capability"
            choices = sorted(known if exp.kind else probes | capabilities)
            problem = "%s: unknown %s %r (known: %s)" % (exp.path, what, text(exp.key, 60),
                                                         ", ".join(text(c, 60) for c in choices))
            if isinstance(expectations, ExpectationFile):
                raise expectations.error(problem)
            raise InputError(problem)


# --------------------------------------------------------------------------- deciding

def evaluate(exp, report):
    """(verdict, what was found) for one expectation against a loaded report."""
    if exp.kind == "capability":
        entry = (report.get("summary") or {}).get(exp.key)
        if entry is None:
            return UNDECIDED, "capability not in the report"
        state = entry.get("state")
        found = "%s (%s)" % (text(state), text(entry.get("text"))) if entry.get("text") else text(state)
        if state in exp.values:
            return HOLDS, found
        if state == "unknown":
            return UNDECIDED, found
        return FAILS, found

    result = (report.get("probes") or {}).get(exp.key)
    if result is None:
        return UNDECIDED, "probe not in the report"
    from probe._collect.show import probe_detail

    outcome = result.get("outcome")
    found = "%s %s" % (text(outcome), probe_detail(result))
    wanted = exp.values or (BLOCKING if exp.denied_by else None)
    if wanted and outcome not in wanted:
        if outcome in ("skipped", "error"):
            return UNDECIDED, found
        return FAILS, found
    for field, values in (("errno", exp.errno), ("signal", exp.signal), ("step", exp.step)):
        if not values:
            continue
        name = result.get("errno_name" if field == "errno" else field)
        number = result.get("errno" if field == "errno" else "signal_number")
        if not any(v == name or (isinstance(v, int) and v == number) for v in values):
            if outcome in ("skipped", "error"):
                return UNDECIDED, found
            return FAILS, found
    if exp.denied_by:
        return _attributed(exp, result, found)
    return HOLDS, found


def _attributed(exp, result, found):
    items = result.get("attribution")
    if not isinstance(items, list) or not items:
        return UNDECIDED, found + "; the report names no mechanism"
    names = []
    for item in items:
        mech = _mechanism(item.get("mechanism", ""))
        confidence = item.get("confidence")
        names.append(text("%s (%s)" % (mech, confidence) if confidence else mech, 60))
        matches = any(mech == want or mech.startswith(want + "-") for want in exp.denied_by)
        if matches and (confidence in exp.confidence or confidence is None and "unknown" in exp.confidence):
            return HOLDS, found + "; by " + ", ".join(names)
    found += "; by " + ", ".join(names)
    decided = [i for i in items if i.get("confidence") in ("confirmed", "likely")]
    return (FAILS if decided else UNDECIDED), found


def check(expectations, report):
    """[(expectation, verdict, found)] in file order."""
    return [(exp,) + evaluate(exp, report) for exp in expectations]


def exit_status(results):
    verdicts = {verdict for _, verdict, _ in results}
    if FAILS in verdicts:
        return EXIT_DIFFERENT
    if UNDECIDED in verdicts:
        return EXIT_UNDECIDED
    return EXIT_OK


def junit_cases(results, report):
    from probe._collect._junit import classname_for

    classname = classname_for("memprobe.check", report)
    status = {HOLDS: "passed", FAILS: "failure", UNDECIDED: "skipped"}
    cases = []
    for exp, verdict, found in results:
        cases.append({"classname": classname, "name": exp.describe(), "status": status[verdict],
                      "message": "%s: expected %s, found %s" % (verdict, exp.describe(), found),
                      "output": "found %s" % found})
    return cases


# --------------------------------------------------------------------------- command

def _run_report(args):
    try:
        from probe._cmd_run import collect
    except ImportError:
        raise UsageError("--run needs the probe engine, which this build lacks") from None
    return collect(None, args.isolation, args.timeout)


def main(args):
    _render.tolerant_stdout()
    from probe import _load

    if args.run == bool(args.report):
        raise UsageError("check needs a REPORT or --run (one of them)")
    if not args.run and (args.save or args.isolation != "fork" or args.timeout != 10.0):
        raise UsageError("--save, --isolation and --timeout go with --run")
    expectations = load_expectations(args.expect)
    failures = []   # files that could not be written: the check result is still printed
    if args.run:
        resolve(expectations)  # a typo should fail before the probes run
        for path in (args.save, args.junit):
            _output.refuse_directory(path)
        report = _run_report(args)
        problems = _load.report_problems(report)
        if problems:
            raise InputError("the run produced an invalid report: %s" % problems[0])
        if args.save:
            from probe import _report

            _write(args.save, lambda: _report.dumps(report, _output.choose_format(args.save, None, option="--save")),
                   failures)
        name = "this host"
    else:
        report = _load.load_report(args.report)
        name = "<stdin>" if args.report == "-" else _load.display_name(args.report)
    resolve(expectations, report)
    results = check(expectations, report)
    status = exit_status(results)
    if args.junit:
        from probe._collect import _junit

        _write(args.junit, lambda: _junit.render("memprobe check " + _render.host_label(report),
                                                 junit_cases(results, report), _junit._properties(report)), failures)
    palette = _render.Palette.for_stream(sys.stdout, args.colour)
    _output.write_stdout(render(results, report, name, palette, args.quiet))
    _output.raise_first(failures)
    return status


def _write(path, make_text, failures):
    try:
        _render.write_text(path, make_text())
    except OutputError as exc:
        failures.append(exc)


def render(results, report, name, palette, quiet=False):
    p = palette
    out = []
    if not quiet:
        out.append("%s  %s" % (p.paint("bold", _render.host_label(report)), p.paint("dim", "(%s)" % text(name))))
    marks = {HOLDS: ("good", "ok"), FAILS: ("bad", "FAIL"), UNDECIDED: ("odd", "UNDECIDED")}
    counts = {HOLDS: 0, FAILS: 0, UNDECIDED: 0}
    for exp, verdict, found in results:
        counts[verdict] += 1
        if quiet and verdict == HOLDS:
            continue
        style, word = marks[verdict]
        line = "%s %s" % (p.paint(style, word.ljust(9)), exp.describe())
        if verdict != HOLDS or not quiet:
            line += p.paint("dim", "  (found %s)" % found) if verdict == HOLDS else "  (found %s)" % found
        out.append(line)
    out.append("%d expectation%s: %d hold, %d fail, %d undecided" % (
        len(results), "" if len(results) == 1 else "s", counts[HOLDS], counts[FAILS], counts[UNDECIDED]))
    return "\n".join(out) + "\n"
