"""memprobe check (the CI gate) and the JUnit XML of check and run, on real reports."""

import xml.etree.ElementTree as ET

import pytest

from probe.render import junit as _junit
from probe.commands import check
from probe.errors import InputError

from helpers.collect_fixtures import HOSTILE, cli, real, variant, with_attribution, write_bytes  # noqa: F401


def expect(tmp_path, text, name="expect.yaml"):
    return write_bytes(tmp_path, name, text.encode("utf-8"))


PLAIN_HOST = """\
# what this machine gives with no confinement
nx: enforced
wx_flip: works
flip_rw_rx: allowed
map_rwx: allowed
exec_rw: {outcome: crashed, signal: SIGSEGV, step: call}
dual_mapping: works
"""


def test_all_hold_on_the_plain_report(real, tmp_path):
    status, out, err = cli("check", "--expect", expect(tmp_path, PLAIN_HOST), real.json("plain"))
    assert status == 0, out + err
    assert out.splitlines()[-1] == "6 expectations: 6 hold, 0 fail, 0 undecided"


def test_plain_expectations_fail_under_mdwe_and_seccomp(real, tmp_path):
    for name, errno in (("mdwe", "EACCES"), ("seccomp", "EPERM")):
        status, out, _ = cli("check", "-e", expect(tmp_path, PLAIN_HOST), real.json(name))
        assert status == 2
        fails = [line for line in out.splitlines() if line.startswith("FAIL")]
        assert [f.split()[1] for f in fails] == ["wx_flip:", "flip_rw_rx:", "map_rwx:"]
        assert "(found denied %s" % errno in fails[1]


def test_expectations_for_a_confined_host(real, tmp_path):
    exp = expect(tmp_path, """\
probes:
  flip_rw_rx: {outcome: denied, errno: EACCES}
  map_rwx: [denied, crashed]
  map_rx: allowed
  dual_map_memfd: allowed
capabilities:
  wx_flip: blocked
  dual_mapping: works
""")
    assert cli("check", "-e", exp, real.json("mdwe"))[0] == 0
    status, out, _ = cli("check", "-e", exp, real.json("seccomp"))
    assert status == 2 and out.count("FAIL") == 1 and "flip_rw_rx: denied, errno EACCES" in out
    assert cli("check", "-e", exp, real.json("plain"))[0] == 2


def test_undecided_exit_3(real, tmp_path):
    doc = variant(real.doc("plain"), outcomes={"dual_map_shm": ("skipped",)})
    doc["summary"]["dual_mapping"]["state"] = "unknown"
    del doc["probes"]["read_implies_exec"]
    report = write_bytes(tmp_path, "r.json", __import__("json").dumps(doc).encode())
    exp = expect(tmp_path, "dual_map_shm: allowed\ndual_mapping: works\nread_implies_exec: allowed\n"
                           "flip_rw_rx: allowed\n")
    status, out, _ = cli("check", "-e", exp, report)
    assert status == 3, out
    assert out.splitlines()[-1] == "4 expectations: 1 hold, 0 fail, 3 undecided"
    # a failure outranks undecided ones
    exp = expect(tmp_path, "dual_map_shm: allowed\nflip_rw_rx: denied\n")
    assert cli("check", "-e", exp, report)[0] == 2
    # expecting the skip makes it hold
    exp = expect(tmp_path, "dual_map_shm: [allowed, skipped]\n")
    assert cli("check", "-e", exp, report)[0] == 0


def test_denied_by_matches_attribution(real):
    report = with_attribution(real.doc("mdwe"))
    exps = check.parse_expectations({
        "flip_rw_rx": {"denied_by": "mdwe"},
        "map_rwx": {"outcome": "denied", "denied_by": ["pax-mprotect", "mdwe"]},
        "repatch_rx": {"denied_by": "seccomp"},
        "patch_rwx": {"denied_by": "MDWE", "confidence": "confirmed"},
        "map_rx": {"denied_by": "mdwe"},
    })[0]
    check.resolve(exps, report)
    verdicts = {e.key: v for e, v, _ in check.check(exps, report)}
    assert verdicts == {"flip_rw_rx": "holds", "map_rwx": "holds", "repatch_rx": "fails",
                        "patch_rwx": "holds", "map_rx": "fails"}
    # a report without attribution cannot decide denied_by
    bare = real.doc("mdwe")
    for result in bare["probes"].values():
        result.pop("attribution", None)
    assert check.evaluate(exps[0], bare)[0] == "undecided"


def test_denied_by_prefix_and_confidence():
    result = {"outcome": "denied", "errno_name": "EACCES", "errno": 13, "step": "mprotect_rx",
              "attribution": [{"mechanism": "pax-mprotect", "confidence": "likely", "evidence": ["x"]}]}
    report = {"probes": {"flip_rw_rx": result}, "summary": {}}

    def verdict(spec):
        exp = check.parse_expectations({"flip_rw_rx": spec})[0][0]
        return check.evaluate(exp, report)[0]

    assert verdict({"denied_by": "pax"}) == "holds"
    assert verdict({"denied_by": "pa"}) == "fails"
    assert verdict({"denied_by": "pax_mprotect"}) == "holds"
    assert verdict({"denied_by": "pax-mprotect", "confidence": "confirmed"}) == "fails"
    assert verdict({"errno": 13}) == "holds" and verdict({"errno": "EPERM"}) == "fails"
    result["attribution"] = [{"mechanism": "unknown", "confidence": "unknown", "evidence": []}]
    assert verdict({"denied_by": "pax"}) == "undecided"


@pytest.mark.parametrize("text,needle", [
    ("flip_rw_xr: allowed\n", "expect.yaml:1:1: flip_rw_xr: unknown probe 'flip_rw_xr' (known: "),
    ("wx_flop: works\n", "unknown capability 'wx_flop'"),
    ("flip_rw_rx: alowed\n", "'alowed' is neither a probe outcome"),
    ("probes:\n  flip_rw_rx: works\n", "expect.yaml:2:3: probes.flip_rw_rx: 'works' is not a probe outcome"),
    ("capabilities:\n  nx: allowed\n", "'allowed' is not a capability state"),
    ("nx: enforced\nflip_rw_rx:\n  outcome: denied\n  colour: red\n", "expect.yaml:4:3: flip_rw_rx.colour: unknown field"),
    ("flip_rw_rx: {errno: eacces}\n", "'eacces' is not an errno name like EACCES"),
    ("flip_rw_rx: {confidence: likely}\n", "only meaningful with denied_by"),
    ("flip_rw_rx: {}\n", "says nothing"),
    ("flip_rw_rx: 42\n", "expected an outcome, a state, a list of them or a mapping, got number"),
    ("flip_rw_rx: []\n", "empty list"),
    ("- flip_rw_rx\n", "expected a mapping of probe ids / capabilities, got list"),
    ("{}\n", "no expectations in the file"),
    ("nx: {state: enforced, outcome: allowed}\n", "not both"),
])
def test_bad_expectation_files_exit_1_with_the_line(real, tmp_path, text, needle):
    status, out, err = cli("check", "-e", expect(tmp_path, text), real.json("plain"))
    assert (status, out) == (1, ""), err
    assert needle in err and err.count("\n") == 1, err


@pytest.mark.parametrize("name", ["python-object", "billion-laughs", "deep-block", "latin1", "dup-key"])
def test_hostile_expectation_files(real, tmp_path, name):
    path = write_bytes(tmp_path, "expect.yaml", HOSTILE[name])
    status, out, err = cli("check", "-e", path, real.json("plain"))
    assert (status, out) == (1, "") and err.startswith("memprobe: error: %s" % path) and err.count("\n") == 1


def test_usage_errors(real, tmp_path):
    exp = expect(tmp_path, PLAIN_HOST)
    for args in (("check", "-e", exp), ("check", "-e", exp, "--run", real.json("plain")),
                 ("check", "-e", exp, real.json("plain"), "--save", tmp_path / "x.yaml")):
        status, _, err = cli(*args)
        assert status == 1 and err.count("\n") == 1, args


def test_name_both_probe_and_capability_is_settled_by_the_value(real, tmp_path):
    # read_implies_exec is a probe id and a capability name
    exp = expect(tmp_path, "read_implies_exec: allowed\n")
    assert cli("check", "-e", exp, real.json("plain"))[0] == 0
    exp = expect(tmp_path, "read_implies_exec: works\n")
    assert cli("check", "-e", exp, real.json("plain"))[0] == 0
    exp = expect(tmp_path, "read_implies_exec: blocked\n")
    assert cli("check", "-e", exp, real.json("plain"))[0] == 2


def test_check_run_against_this_host(real, tmp_path):
    """--run probes this host (unconfined here) like `memprobe run` does."""
    saved = tmp_path / "saved.json"
    status, out, err = cli("check", "-e", expect(tmp_path, PLAIN_HOST), "--run", "--save", saved)
    assert status == 0, out + err
    assert __import__("json").loads(saved.read_text())["probes"]["flip_rw_rx"]["outcome"] == "allowed"
    status, _, err = cli("check", "-e", expect(tmp_path, "flip_rw_xr: allowed\n"), "--run")
    assert status == 1 and "unknown probe" in err


def _cases(path):
    root = ET.parse(str(path)).getroot()
    suite = root.find("testsuite")
    return root, suite, suite.findall("testcase")


def test_check_junit_one_case_per_expectation(real, tmp_path):
    junit = tmp_path / "check.xml"
    exp = expect(tmp_path, PLAIN_HOST + "dual_map_shm: allowed\n")
    status, _, _ = cli("check", "-e", exp, real.json("mdwe"), "--junit", junit)
    assert status == 2
    root, suite, cases = _cases(junit)
    assert len(cases) == 7
    assert suite.get("tests") == "7" and suite.get("failures") == "3" and suite.get("skipped") == "0"
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failed == ["wx_flip: works", "flip_rw_rx: allowed", "map_rwx: allowed"]
    assert all(c.get("classname").startswith("memprobe.check.linux_") for c in cases)
    assert "." not in cases[0].get("classname")[len("memprobe.check."):]
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["host.hostname"] == real.doc("mdwe")["host"]["hostname"]


def test_run_junit_one_case_per_probe(real, tmp_path):
    doc = variant(real.doc("seccomp"), outcomes={"map_rx": ("skipped",), "patch_file_text": ("timeout",),
                                                 "exec_stack": ("error",)})
    doc["host"]["hostname"] = "bad\x00\x1b<&>\ud800name"
    text = _junit.run_junit(doc)
    root = ET.fromstring(text.encode("utf-8"))
    cases = root.find("testsuite").findall("testcase")
    assert [c.get("name") for c in cases] == list(doc["probes"])
    status = {c.get("name"): ("error" if c.find("error") is not None else
                              "skipped" if c.find("skipped") is not None else
                              "failure" if c.find("failure") is not None else "passed") for c in cases}
    assert status["map_rx"] == "skipped"
    assert status["patch_file_text"] == "error" and status["exec_stack"] == "error"
    assert status["flip_rw_rx"] == "passed"  # denied is a finding, not a test error
    assert set(status.values()) == {"passed", "skipped", "error"}
    assert root.get("errors") == "2" and root.get("skipped") == "1" and root.get("failures") == "0"
    # the label is escaped for display; the XML parsed, so nothing invalid reached it
    assert "bad\\x00\\x1b<&>\\ud800name" in root.get("name")
    assert _junit.xml_text("a\x00b\ud800c\x1b") == "a\ufffdb\ufffdc\ufffd"


def test_run_junit_through_memprobe_run(tmp_path):
    path = tmp_path / "run.xml"
    status, _, err = cli("run", "--only", "flip_rw_rx", "map_rx", "--output", "-", "--quiet", "--junit", path)
    assert status == 0, err
    _, suite, cases = _cases(path)
    assert [c.get("name") for c in cases] == ["flip_rw_rx", "map_rx"]


def test_expectation_file_errors_are_input_errors():
    exps, problems = check.parse_expectations({"probes": [1], "capabilities": {"nx": {"state": 3}}})
    assert problems[0] == "probes: expected a mapping, got list"
    assert "capabilities.nx.state: expected a word" in problems[1]
    with pytest.raises(InputError):
        check.resolve(check.parse_expectations({"nope": "allowed"})[0], {"probes": {}, "summary": {}})


@pytest.mark.parametrize("name,mechanism,other", [("mdwe", "mdwe", "seccomp"), ("seccomp", "seccomp", "mdwe")])
def test_denied_by_on_real_confined_reports(real, tmp_path, name, mechanism, other):
    """The reports `memprobe run` writes under real confinement carry attribution."""
    doc = real.doc(name)
    assert "attribution" in doc["probes"]["flip_rw_rx"]
    exp = expect(tmp_path, "flip_rw_rx: {denied_by: %s}\nmap_rwx: {outcome: denied, denied_by: %s}\n"
                 % (mechanism, mechanism))
    status, out, _ = cli("check", "-e", exp, real.json(name))
    assert status == 0, out
    exp = expect(tmp_path, "flip_rw_rx: {denied_by: %s}\n" % other)
    status, out, _ = cli("check", "-e", exp, real.json(name))
    assert status == 2 and "FAIL" in out and ("by %s" % mechanism) in out


def test_signal_expectations_on_the_real_kill_filter_report(real, reports, tmp_path):
    """Under a seccomp filter with a kill action the flip ends in SIGSYS, and show says so."""
    doc = reports.get("seccomp-kill")
    flip = doc["probes"]["flip_rw_rx"]
    assert (flip["outcome"], flip["signal"]) == ("crashed", "SIGSYS")
    exp = expect(tmp_path, "flip_rw_rx: {outcome: crashed, signal: SIGSYS}\nmap_rx: allowed\n"
                           "wx_flip: blocked\n")
    status, out, _ = cli("check", "-e", exp, reports.path("seccomp-kill"))
    assert status == 0, out
    exp = expect(tmp_path, "flip_rw_rx: {signal: SIGSEGV}\n")
    assert cli("check", "-e", exp, reports.path("seccomp-kill"))[0] == 2
    status, out, _ = cli("show", reports.path("seccomp-kill"))
    line = next(line for line in out.splitlines() if line.split()[:1] == ["flip_rw_rx"])
    assert "crashed" in line and "SIGSYS at %s" % flip["step"] in line


@pytest.mark.parametrize("command, codes", [("show", {0, 1, 70, 130}), ("diff", {0, 1, 2, 70, 130}),
                                            ("matrix", {0, 1, 70, 130}), ("check", {0, 1, 2, 3, 70, 130}),
                                            ("validate", {0, 1, 70, 130})])
def test_help_documents_its_own_exit_codes(command, codes):
    # Each command lists the codes it can return, and no other command's.
    status, out, _ = cli(command, "--help")
    assert status == 0
    listed = out.split("exit codes:\n", 1)[1]
    assert {int(line.split()[0]) for line in listed.splitlines() if line[:5].strip().isdigit()} == codes


def test_a_control_character_in_a_probe_key_is_escaped_in_the_error(tmp_path):
    # Found by the fuzz test: the key path in the message carried a raw ESC.
    path = tmp_path / "e.yaml"
    path.write_text('probes:\n  "\\e": allowed\n')
    with pytest.raises(InputError) as info:
        check.load_expectations(str(path))
    assert "\x1b" not in str(info.value) and "\\x1b" in str(info.value)
