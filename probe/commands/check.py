"""`memprobe check --expect EXPECT.yaml [REPORT | --run]`: a CI gate.

The expectations file (YAML or JSON, untrusted like a report) maps probe ids,
capability names and strategies to what must hold:

    flip_rw_rx: allowed              # a probe outcome
    map_rwx: [denied, crashed]       # any of these outcomes
    patch_rwx: {outcome: denied, errno: EACCES, denied_by: pax-mprotect}
    nx: enforced                     # a capability state (the report's summary)
    wx_flip: works
    probes: {...}                    # the same, explicitly a probe ...
    capabilities: {...}              # ... or a capability, when a name is both
    strategies: {wx_flip: works}     # a strategy verdict (the report's strategies)
    any: [{strategies: {wx_flip: works}}, {strategies: {dual_mapping: works}}]
    all: [...]
    sections: [{when: {os: freebsd}, wx_flip: blocked}]

(_expect parses, _evaluate decides, _check_output prints.)

Exit status: 0 every expectation holds; 2 some does not; 3 none fails but
some could not be decided (probe skipped or errored, state unknown, probe or
capability missing from the report, no attribution to match denied_by), or no
expectation applies to the host; 1 usage or input error.
"""

import argparse
import os
import sys

from probe.report import output as _output
from probe.render import check_output as _check_output
from probe.render import text as _render
from probe.render.check_output import junit_cases, render  # noqa: F401 - this module's API
from probe.gate.evaluate import (FAILS, HOLDS, UNDECIDED, check, evaluate,  # noqa: F401
                                 exit_status, sections)
from probe.gate.expect import (ExpectationFile, known_names, load_expectations,  # noqa: F401
                               parse_expectations, resolve)
from probe.gate.expect_entry import Expectation  # noqa: F401
from probe.errors import InputError, OutputError, UsageError

SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from probe.commands._options import add_probe_arguments

    parser.add_argument("--expect", "-e", required=True, metavar="EXPECT.yaml",
                        help="expectations file: probe id, capability or strategy -> what must hold")
    parser.add_argument("report", nargs="?", metavar="REPORT", help="report to check (YAML or JSON; '-' for stdin)")
    parser.add_argument("--run", action="store_true",
                        help="run the probes on this host and check the result; --only, --isolation, "
                             "--timeout, --jobs and --pax-defaults act as for run")
    add_probe_arguments(parser)
    parser.add_argument("--save", metavar="PATH", help="with --run: also write the report (.json: JSON, else YAML)")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="json: outcome, exit code and one entry per expectation, for programs")
    parser.add_argument("--junit", metavar="PATH", help="write JUnit XML, one test case per expectation")
    parser.add_argument("--github-summary", action="store_true",
                        help="also append a Markdown table to $GITHUB_STEP_SUMMARY")
    parser.add_argument("--quiet", "-q", action="store_true", help="print only expectations that do not hold")
    _render.add_colour_argument(parser)
    _render.add_perspective_argument(parser)


_RUN_ONLY = (("save", None), ("isolation", "fork"), ("timeout", 10.0), ("only", None), ("jobs", None),
             ("pax_defaults", False))


def _check_usage(args):
    if args.run == bool(args.report):
        raise UsageError("check needs a REPORT or --run (one of them)")
    if not args.run:
        given = [name for name, default in _RUN_ONLY if getattr(args, name) != default]
        if given:
            raise UsageError("%s go%s with --run" % (", ".join("--" + n.replace("_", "-") for n in given),
                                                     "es" if len(given) == 1 else ""))
    if args.github_summary and not os.environ.get(SUMMARY_ENV):
        raise UsageError("--github-summary: %s is not set (it is, inside a GitHub Actions step)" % SUMMARY_ENV)


def _run_report(args):
    from probe.commands import _terminal

    return _terminal.collect(args)   # with progress when stderr is a terminal


def _probe_this_host(args, failures):
    from probe.report import load as _load

    report = _run_report(args)
    problems = _load.report_problems(report)
    if problems:
        raise InputError("the run produced an invalid report: %s" % problems[0])
    if args.save:
        from probe.report import build as _report

        _write(args.save, lambda: _report.dumps(report, _output.choose_format(args.save, None, option="--save")),
               failures)
    return report


def main(args: argparse.Namespace) -> int:
    _render.tolerant_stdout()
    from probe.report import load as _load

    _check_usage(args)
    expectations = load_expectations(args.expect)
    failures = []   # files that could not be written: the check result is still printed
    if args.run:
        resolve(expectations)  # a typo should fail before the probes run
        for path in (args.save, args.junit):
            _output.refuse_directory(path)
        if args.pax_defaults:
            from probe.commands._options import via_unmarked_copy
            from probe.report.collect import UNMARKED_ENV

            if not os.environ.get(UNMARKED_ENV):
                code = via_unmarked_copy(args)
                if code is not None:
                    return code
        report, name = _probe_this_host(args, failures), "this host"
    else:
        report = _load.load_report(args.report)
        name = "<stdin>" if args.report == "-" else _load.display_name(args.report)
    resolve(expectations, report)
    results = check(expectations, report)
    status = exit_status(results)
    _write_outputs(args, expectations, results, report, name, status, failures)
    _output.raise_first(failures)
    return status


def _write(path, make_text, failures):
    try:
        _render.write_text(path, make_text())
    except OutputError as exc:
        failures.append(exc)


def _write_outputs(args, expectations, results, report, name, status, failures):
    if args.junit:
        from probe.render import junit as _junit

        _write(args.junit, lambda: _junit.render("memprobe check " + _render.host_label(report),
                                                 junit_cases(results, report), _junit._properties(report)), failures)
    if args.github_summary:
        _render.append_text(os.environ[SUMMARY_ENV], _check_output.render_markdown(results, report, status))
    if os.environ.get("GITHUB_ACTIONS") == "true":
        # stderr: the runner reads workflow commands from both streams, and stdout may be JSON
        sys.stderr.write(_check_output.annotations(results, expectations))
        sys.stderr.flush()
    found_sections = sections(expectations, report)
    if args.format == "json":
        text = _check_output.render_json(results, report, name, status, expectations, found_sections)
    else:
        palette = _render.Palette.for_stream(sys.stdout, args.colour, args.perspective)
        text = render(results, report, name, palette, args.quiet, found_sections)
    _output.write_stdout(text)
