"""`memprobe run --redact` and `memprobe redact`: what leaves the report, what stays.

The runs happen on the real kernel in private UTS and mount namespaces (a host name and
a tmpfs mount of the test's own), so the host is untouched.
"""

import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import CONFINE, ROOT, memprobe_env, run_cli
from helpers.uids import shared_dir  # noqa: F401  (a fixture)
from probe.report import redact as _redact
from probe.report import validator as _schema

HOST = "alice-laptop"
USER = "bob-the-user"
KEY = b"0123456789abcdef0123456789abcdef"


def _expected_pseudonym(hostname, key=KEY):
    # Recomputed here from the documented recipe, not through probe.report.redact.
    message = b"memprobe hostname pseudonym v1\0" + hostname.encode()
    return "host-" + hmac.new(key, message, hashlib.sha256).hexdigest()[:12]


def _in_namespaces(tmp_path, argv, hostname=HOST, mount=None, env=None, cwd=None):
    """Run `python -m probe ARGV` with its own host name (and a tmpfs at `mount`)."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare(1) for private UTS and mount namespaces")
    script = ('hostname "$1" || exit 77; if [ -n "$2" ]; then mount -t tmpfs -o size=8m '
              'memprobe-test "$2" || exit 77; mkdir -p "$TMPDIR"; fi; shift 2; exec "$@"')
    cmd = ["unshare", "--uts", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
           hostname, mount or "", sys.executable, "-m", "probe"] + list(argv)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(cwd or tmp_path),
                          timeout=120)
    if proc.returncode == 77 or "unshare failed" in proc.stderr:
        pytest.skip("cannot make private namespaces here: %s" % proc.stderr.strip())
    assert proc.returncode == 0, proc.stderr
    return proc


def _key_env(tmp_path, **extra):
    key_file = tmp_path / "redact.key"
    key_file.write_bytes(KEY + b"\n")
    return memprobe_env(MEMPROBE_REDACT_KEY_FILE=str(key_file), **extra)


def _every_text(*paths):
    return "\n".join(open(str(p), encoding="utf-8").read() for p in paths)


def test_run_redact_hides_host_user_and_home(tmp_path):
    home = tmp_path / "home" / USER
    tmpdir = tmp_path / "work" / USER / (HOST + ".example.org") / "tmp"
    for d in (home, tmpdir, tmp_path / "cwd"):
        d.mkdir(parents=True)
    env = _key_env(tmp_path, HOME=str(home), USER=USER, TMPDIR=str(tmpdir))
    junit = tmp_path / "run.xml"
    proc = _in_namespaces(tmp_path, ["run", "--redact", "--junit", str(junit)], env=env,
                          cwd=tmp_path / "cwd")
    pseudonym = _expected_pseudonym(HOST)
    report = yaml.safe_load(proc.stdout)
    [name] = os.listdir(str(tmp_path / "cwd" / "reports"))    # the file name uses the pseudonym
    assert name == "linux-%s-%s.yaml" % (report["host"]["arch"], pseudonym.replace("-", "_"))
    report_path = tmp_path / "cwd" / "reports" / name
    everything = proc.stdout + proc.stderr + _every_text(report_path, junit)
    assert HOST not in everything and USER not in everything
    assert report["host"]["hostname"] == pseudonym
    assert report["process"]["tmpdir"] == "%s/work/<user>/%s/tmp" % (tmp_path, pseudonym)
    assert report["redacted"]["hostname_key"] == "key-file"
    assert {"host.hostname", "process.tmpdir"} <= set(report["redacted"]["changed"])
    assert 'name="host.hostname" value="%s"' % pseudonym in junit.read_text()
    assert _schema.validate(report) == []
    # what a bug report needs stays
    assert report["host"]["kernel_release"] == os.uname().release
    assert report["probes"]["exec_rw"]["outcome"] == "crashed"
    assert report["process"]["uid"] == 0 and report["summary"]


def test_run_redact_trims_a_private_mount_point(tmp_path):
    mount = tmp_path / "acme-prod-data"
    mount.mkdir()
    out = tmp_path / "r.json"
    env = _key_env(tmp_path, TMPDIR=str(mount / HOST / "tmp"))    # made inside the tmpfs
    _in_namespaces(tmp_path, ["run", "--redact", "--quiet", "--format", "json", "--output", str(out)],
                   mount=str(mount), env=env)
    text = out.read_text()
    assert "acme-prod" not in text and HOST not in text
    report = json.loads(text)
    entry = report["policies"]["noexec_mounts"]["paths"]["tmpdir"]
    assert entry["mount_point"].endswith("/...") and entry["fstype"] == "tmpfs"
    assert entry["noexec"] is False                      # what the verdicts depend on stays
    assert report["process"]["tmpdir"] == entry["path"] == entry["mount_point"]
    assert report["probes"]["dual_map_file"]["outcome"] == "allowed"


def test_pseudonym_is_keyed_stable_and_not_a_plain_hash():
    assert _redact.pseudonym(HOST, KEY) == _expected_pseudonym(HOST)
    assert _redact.pseudonym(HOST.upper(), KEY) == _redact.pseudonym(HOST, KEY)
    assert _redact.pseudonym(HOST, b"another key of 16+ bytes") != _redact.pseudonym(HOST, KEY)
    assert _redact.pseudonym("vm", KEY) != "host-" + hashlib.sha256(b"vm").hexdigest()[:12]
    assert _redact.pseudonym("vm", KEY) != _redact.pseudonym("vn", KEY)


def test_default_key_is_the_machine_id_and_runs_agree():
    names = set()
    for _ in range(2):
        proc = run_cli("run", "--redact", "--only", "map_rx", "--format", "json", "--output", "-")
        assert proc.returncode == 0, proc.stderr
        report = json.loads(proc.stdout)
        names.add(report["host"]["hostname"])
    assert len(names) == 1 and names.pop().startswith("host-")
    if any(os.access(p, os.R_OK) for p in _redact.MACHINE_ID_PATHS):
        assert report["redacted"]["hostname_key"] == "machine-id"


def test_without_a_machine_id_a_private_key_file_is_made_once(tmp_path, monkeypatch):
    monkeypatch.delenv(_redact.KEY_FILE_ENV, raising=False)
    empty, unset = tmp_path / "empty-machine-id", tmp_path / "first-boot-machine-id"
    empty.write_text("")
    unset.write_text("uninitialized\n")
    key_file = tmp_path / "config" / "memprobe" / "redact.key"
    first = _redact.host_key((str(empty), str(unset), str(tmp_path / "absent")), str(key_file))
    assert first[1] == "key-file" and len(first[0]) >= 32
    assert os.stat(str(key_file)).st_mode & 0o777 == 0o600
    assert _redact.host_key((str(empty),), str(key_file)) == first


def test_a_missing_shared_key_file_is_one_line(tmp_path, reports):
    env = memprobe_env(MEMPROBE_REDACT_KEY_FILE=str(tmp_path / "nope.key"))
    proc = run_cli("redact", reports.path("plain"), env=env)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "nope.key: key file not found" in proc.stderr


def test_run_redact_with_a_missing_key_fails_before_probing(tmp_path):
    env = memprobe_env(MEMPROBE_REDACT_KEY_FILE=str(tmp_path / "nope.key"))
    proc = run_cli("run", "--redact", "--output", str(tmp_path / "r.yaml"), env=env)
    assert proc.returncode == 1 and proc.stdout == "" and proc.stderr.count("\n") == 1
    assert not (tmp_path / "r.yaml").exists()


def _rules(mounts=()):
    rules = _redact.PathRules(["carol", "root"], {"/srv/people/dave": "~", "/srv/people/frank": "~<user>"}, "vm", "host-abc")
    rules.set_mounts(list(mounts))
    return rules


@pytest.mark.parametrize("before, after", [
    ("/proc/sys/vm/memfd_noexec", "/proc/sys/vm/memfd_noexec"),   # a system tree, not the host
    ("/scratch/vm/tmp", "/scratch/host-abc/tmp"),
    ("/scratch/VM.example.org/x", "/scratch/host-abc/x"),
    ("/home/erin/.venv/bin/python3", "/home/<user>/.venv/bin/python3"),
    ("/Users/erin/x", "/Users/<user>/x"),
    ("/usr/home/erin/x", "/usr/home/<user>/x"),
    ("/srv/people/dave/.venv/bin/python", "~/.venv/bin/python"),
    ("/srv/people/frank/x", "~<user>/x"),
    ("/srv/people/davey/x", "/srv/people/davey/x"),
    ("/opt/carol/py/bin/python", "/opt/<user>/py/bin/python"),
    ("/root/.pyenv/bin/python", "/root/.pyenv/bin/python"),
    ("/var/tmp/carol/tmp", "/var/tmp/<user>/tmp"),
    ("'/data/acme/tmp is on /data/acme (ext4).'", "'/... is on /... (ext4).'"),
    ("/srv/acme-ci/x: refused", "/srv/...: refused"),
    ("GNU/Linux W|X rw-/r-x", "GNU/Linux W|X rw-/r-x"),
    ("~/already", "~/already"),
])
def test_path_rules(before, after):
    assert _rules(["/data/acme", "/srv/acme-ci", "/dev/shm", "/"]).text(before) == after


def _variant(source, target, **process):
    with open(source, encoding="utf-8") as f:
        doc = json.load(f)
    doc["process"].update(process)
    with open(str(target), "w", encoding="utf-8") as f:
        json.dump(doc, f)
    return doc


def test_redact_command_output_validates_and_every_collector_reads_it(tmp_path, reports):
    original = tmp_path / "orig.json"
    _variant(reports.path("plain"), original, uid=1000, euid=1000, gid=1000,
             interpreter="/home/carol/venv/bin/python3", tmpdir="/home/carol smith/tmp")
    out = tmp_path / "red.yaml"
    env = _key_env(tmp_path)
    proc = run_cli("redact", str(original), "--output", str(out), env=env)
    assert proc.returncode == 0 and proc.stdout == "", proc.stderr
    doc = yaml.safe_load(out.read_text())
    assert (doc["process"]["uid"], doc["process"]["euid"], doc["process"]["gid"]) == (None, None, None)
    assert doc["process"]["interpreter"] == "/home/<user>/venv/bin/python3"
    assert doc["process"]["tmpdir"] == "/home/<user>/tmp"        # a path field is one path, spaces too
    assert "carol" not in out.read_text()
    for argv, code in ((["validate", str(out)], 0), (["show", str(out)], 0),
                       (["diff", str(original), str(out)], 0),    # same verdicts, same policies
                       (["matrix", str(out), str(original)], 0)):
        proc = run_cli(*argv)
        assert proc.returncode == code, (argv, proc.stderr)
    assert "uid non-root" in run_cli("show", str(out)).stdout
    expect = tmp_path / "expect.yaml"
    expect.write_text("nx: enforced\nexec_rw: crashed\n")
    proc = run_cli("check", "--expect", str(expect), str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_redact_twice_changes_nothing_more(tmp_path, reports):
    env = _key_env(tmp_path)
    once = run_cli("redact", reports.path("plain"), "--format", "json", env=env)
    assert once.returncode == 0, once.stderr
    first = tmp_path / "once.json"
    first.write_text(once.stdout)
    twice = run_cli("redact", str(first), "--format", "json", env=env)
    assert twice.returncode == 0 and twice.stdout == once.stdout


@pytest.mark.parametrize("argv, message", [
    (["redact", "/nonexistent/r.yaml"], "cannot read"),
    (["redact", "REPORT", "--format", "yaml", "--output", "x.json"], "contradicts"),
])
def test_redact_bad_input_is_one_line(reports, tmp_path, argv, message):
    argv = [reports.path("plain") if a == "REPORT" else a for a in argv]
    proc = run_cli(*argv, cwd=str(tmp_path))
    assert proc.returncode == 1 and message in proc.stderr and proc.stderr.count("\n") == 1


def test_non_root_run_redacts_the_uid(shared_dir):
    from helpers.uids import home_for, interpreter_for
    python = interpreter_for(65534)
    code = shared_dir / "src"
    shutil.copytree(os.path.join(ROOT, "probe"), str(code / "probe"))
    env = memprobe_env(HOME=home_for(shared_dir, 65534), TMPDIR="/tmp", PYTHONPATH=str(code))
    proc = subprocess.run([sys.executable, CONFINE, "--uid", "65534", "--", python, "-m", "probe",
                           "run", "--redact", "--only", "map_rx", "--format", "json", "--output", "-"],
                          capture_output=True, text=True, cwd=str(shared_dir), env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    process = json.loads(proc.stdout)["process"]
    assert (process["uid"], process["euid"], process["gid"]) == (None, None, None)
    assert _schema.validate(json.loads(proc.stdout)) == []
