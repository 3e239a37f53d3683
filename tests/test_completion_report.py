"""`memprobe completion SHELL` exercised in the real shells, and `report --for-issue`."""

import os
import re
import shutil
import subprocess

import pytest
import yaml

from conftest import ROOT, run_cli
from probe.render import issue_markdown as _issue_markdown

# A reference report of another host, as a user would attach it.
REFERENCE = os.path.join(ROOT, "reports", "linux-aarch64-qemu-debian-bookworm.yaml")


def _script(tmp_path, shell):
    proc = run_cli("completion", shell)
    assert proc.returncode == 0, proc.stderr
    path = tmp_path / ("memprobe." + shell)
    path.write_text(proc.stdout)
    return str(path)


def _bash_complete(script, *words):
    """COMPREPLY of the completion function for `memprobe WORDS`, the last word under the cursor."""
    words = ["memprobe"] + list(words)
    code = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _memprobe; '
            'printf "%s\\n" "${COMPREPLY[@]}"; complete -p memprobe')
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", code, "bash", script] + words,
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "complete -o filenames -F _memprobe memprobe"
    return [line for line in lines[:-1] if line]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completes_commands_options_and_choices(tmp_path):
    script = _script(tmp_path, "bash")
    assert _bash_complete(script, "ru") == ["run"]
    assert _bash_complete(script, "run", "--iso") == ["--isolation"]
    assert _bash_complete(script, "run", "--isolation", "") == ["fork", "spawn"]
    assert _bash_complete(script, "run", "--only", "flip_rw") == ["flip_rw_rx", "flip_rw_rwx"]
    assert _bash_complete(script, "show", "--perspective", "h") == ["hardening"]
    assert _bash_complete(script, "completion", "f") == ["fish"]
    assert "README.md" in _bash_complete(script, "show", "READ")     # a report: files
    assert "_worker" not in _bash_complete(script, "_")                # internal command hidden


def test_fish_completes_commands_options_and_choices(tmp_path):
    if not shutil.which("fish"):
        pytest.skip("fish is not installed")
    script = _script(tmp_path, "fish")

    def complete(line):
        proc = subprocess.run(["fish", "--no-config", "-c", 'source $argv[1]; complete -C "$argv[2]"', script, line],
                              capture_output=True, text=True, timeout=60, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
        assert proc.returncode == 0, proc.stderr
        return [line.split("\t")[0] for line in proc.stdout.splitlines()]

    assert complete("memprobe ru") == ["run"]
    assert complete("memprobe run --iso") == ["--isolation"]
    assert complete("memprobe run --isolation ") == ["fork", "spawn"]
    assert "hardening" in complete("memprobe matrix --perspective ")


def test_zsh_script_parses_and_registers(tmp_path):
    if not shutil.which("zsh"):
        pytest.skip("zsh is not installed")
    script = _script(tmp_path, "zsh")
    assert subprocess.run(["zsh", "-n", script], timeout=60).returncode == 0
    proc = subprocess.run(["zsh", "-f", "-c", "autoload -U compinit; compinit -u -D; source $1; "
                           "print -r -- ${_comps[memprobe]}; whence -w _memprobe", "zsh", script],
                          capture_output=True, text=True, timeout=60, env={"HOME": str(tmp_path)})
    assert proc.stdout.split() == ["_memprobe", "_memprobe:", "function"], proc.stderr


def test_unknown_shell_is_a_usage_error():
    proc = run_cli("completion", "tcsh")
    assert proc.returncode == 1 and "invalid choice" in proc.stderr


def _fenced_yaml(markdown):
    match = re.search(r"<details><summary>[^<]*</summary>\n\n(`{3,})yaml\n(.*?)\n\1\n\n</details>\n$",
                      markdown, re.S)
    assert match, markdown[-500:]
    return yaml.safe_load(match.group(2))


def test_report_for_issue_is_markdown_with_the_redacted_report_folded():
    proc = run_cli("report", "--for-issue", REFERENCE)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    original = yaml.safe_load(open(REFERENCE))
    assert out.startswith("**memprobe** `linux/aarch64/")
    assert "\nDebian GNU/Linux 12, glibc 2.36, CPython 3.11.2, 64-bit little-endian" in out
    assert "| `wx_flip` | \u2705 works | W-\\>X flip" in out
    assert "**Recommendation:** Use W^X flipping" in out
    folded = _fenced_yaml(out)
    assert folded["redacted"]["changed"]
    assert folded["host"]["hostname"] != original["host"]["hostname"]
    assert original["host"]["hostname"] not in out.split("<details>")[0]
    assert folded["probes"].keys() == original["probes"].keys()


def test_report_for_issue_without_a_report_probes_this_host():
    proc = run_cli("report", "--for-issue", "--only", "map_rx")
    assert proc.returncode == 0, proc.stderr
    assert "| `rx_mapping` | \u2705 works |" in proc.stdout
    assert list(_fenced_yaml(proc.stdout)["probes"]) == ["map_rx"]


def test_report_needs_for_issue_and_a_readable_report(tmp_path):
    assert run_cli("report", REFERENCE).returncode == 1
    proc = run_cli("report", "--for-issue", str(tmp_path / "missing.yaml"))
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1


def test_report_text_cannot_close_the_fence_or_break_the_table():
    doc = yaml.safe_load(open(REFERENCE))
    doc["redacted"] = {"changed": []}
    doc["summary"]["wx_flip"]["text"] = "a | b <script>"
    doc["recommendation"] = "x ```` y\n</details>"
    text = yaml.safe_dump(doc)
    out = _issue_markdown.render(doc, text)
    assert "\n`````yaml\n" in out and out.rstrip().endswith("`````\n\n</details>")
    assert "| a \\| b \\<script\\> |" in out
    assert _fenced_yaml(out)["recommendation"] == doc["recommendation"]


def _zsh_line_after_tab(script, home, lines):
    """Type each (line, what to wait for) and a TAB in an interactive zsh on a pty; what zsh
    echoed back for each, up to what was awaited (or all of it after 20 s)."""
    import os
    import select
    import time
    master, slave = os.openpty()
    proc = subprocess.Popen(["zsh", "-f", "-i"], stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                            env={"HOME": home, "TERM": "dumb", "PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    os.close(slave)

    def read_until(pattern, seconds=20):
        out, end = "", time.monotonic() + seconds
        while not re.search(pattern, out) and time.monotonic() < end:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    out += os.read(master, 4096).decode("utf-8", "replace")
                except OSError:
                    break
        return out

    try:
        os.write(master, ("PS1='%%'; autoload -U compinit; compinit -u -D; source %s; PS1='READY> '\n"
                          % script).encode())
        read_until(r"READY> $")
        echoed = []
        for line, awaited in lines:
            os.write(master, line.encode() + b"\t")
            echoed.append(read_until(awaited))
            os.write(master, b"\x15")   # ^U: clear the line for the next one
            read_until(r"\x15|$", 0.3)
        os.write(master, b"exit\n")
        proc.wait(timeout=30)
        return echoed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_zsh_completes_in_an_interactive_shell(tmp_path):
    if not shutil.which("zsh"):
        pytest.skip("zsh is not installed")
    script = _script(tmp_path, "zsh")
    ru, iso, choices, persp = _zsh_line_after_tab(script, str(tmp_path), [
        ("memprobe ru", "memprobe run $"), ("memprobe run --iso", "--isolation $"),
        ("memprobe run --isolation ", r"fork\s+spawn"), ("memprobe show --persp", "--perspective $")])
    assert ru.endswith("memprobe run "), ru
    assert iso.endswith("memprobe run --isolation "), iso
    assert re.search(r"fork\s+spawn", choices), choices
    assert persp.endswith("memprobe show --perspective "), persp
