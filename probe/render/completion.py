"""Shell completion scripts for bash, zsh and fish, generated from memprobe's own argparse
parser, so they list exactly the commands, options and choices this copy has.

Written here rather than with a generator library: shtab covers bash, zsh and tcsh but not
fish, and a library would become a dependency of every install for a few dozen lines.
"""

import argparse
import re


def describe(parser: argparse.ArgumentParser) -> dict:
    """{command: {"help": text, "options": [option], "files": bool}} for the top-level parser
    (under "") and each public command; an option is {"flags", "help", "value", "choices"}:
    value is False (a switch), "choice", "file" or "any"."""
    from probe.engine import probes as _probes
    probe_ids = [p.id for p in _probes.REGISTRY]
    commands = {"": {"help": "", "options": _options(parser, probe_ids), "files": False}}
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help for c in sub._choices_actions}
    for name, cmd in sub.choices.items():
        if name not in helps:   # internal commands (no help) are not offered
            continue
        positional = [a for a in cmd._actions if not a.option_strings]
        commands[name] = {"help": helps[name], "options": _options(cmd, probe_ids),
                          "files": any(a.choices is None for a in positional),
                          "words": [c for a in positional if a.choices for c in a.choices]}
    return commands


def _options(parser, probe_ids):
    options = []
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        choices = list(action.choices) if action.choices else (probe_ids if action.dest == "only" else None)
        if action.nargs == 0:
            value = False
        elif choices:
            value = "choice"
        elif action.type in (int, float) or (action.metavar or "") in ("N", "S", "UNIT"):
            value = "any"
        else:
            value = "file"
        options.append({"flags": list(action.option_strings), "help": _one_line(action.help),
                        "value": value, "choices": choices or []})
    return options


def _one_line(text):
    return re.sub(r"\s+", " ", (text or "").replace("%(default)s", "")).strip()


def _sq(text):
    """Single-quoted for sh-like shells (bash, zsh, fish all read '...' this way, bar fish's \\')."""
    return "'" + text.replace("'", "'\\''") + "'"


def bash(commands: dict) -> str:
    names = [c for c in commands if c]
    lines = ["# bash completion for memprobe: source it, or save it as",
             "# ~/.local/share/bash-completion/completions/memprobe",
             "_memprobe() {",
             '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" cmd="" i opts',
             "    for ((i = 1; i < COMP_CWORD; i++)); do",
             '        case "${COMP_WORDS[i]}" in -*) ;; *) cmd="${COMP_WORDS[i]}"; break ;; esac',
             "    done",
             '    if [[ -z $cmd ]]; then',
             '        COMPREPLY=($(compgen -W %s -- "$cur"))' % _sq(" ".join(names + _flags(commands[""]))),
             "        return",
             "    fi",
             '    case "$cmd $prev" in']
    for name in names:
        for option in commands[name]["options"]:
            pattern = "|".join('"%s %s"' % (name, flag) for flag in option["flags"])
            if option["value"] == "choice":
                lines.append('        %s) COMPREPLY=($(compgen -W %s -- "$cur")); return ;;'
                             % (pattern, _sq(" ".join(option["choices"]))))
            elif option["value"] == "file":
                lines.append('        %s) COMPREPLY=($(compgen -f -- "$cur")); return ;;' % pattern)
            elif option["value"] == "any":
                lines.append("        %s) COMPREPLY=(); return ;;" % pattern)
    lines += ["    esac", '    case "$cmd" in']
    for name in names:
        lines.append("        %s) opts=%s ;;" % (name, _sq(" ".join(_flags(commands[name]) + commands[name]["words"]))))
    lines += ["        *) opts= ;;", "    esac",
              '    if [[ $cur == -* ]]; then',
              '        COMPREPLY=($(compgen -W "$opts" -- "$cur"))',
              "    else",
              '        COMPREPLY=($(compgen -W "$opts" -- "$cur") $(compgen -f -- "$cur"))',
              "    fi",
              "}",
              "complete -o filenames -F _memprobe memprobe", ""]
    return "\n".join(lines)


def _flags(command):
    return [flag for option in command["options"] for flag in option["flags"]]


def _zq(text):
    """Text inside a zsh _arguments spec: brackets and colons escaped."""
    return re.sub(r"([\[\]:\\])", r"\\\1", text)


def zsh(commands: dict) -> str:
    names = [c for c in commands if c]
    lines = ["#compdef memprobe",
             "# zsh completion for memprobe: save it as _memprobe in a directory of $fpath",
             "# (or source it after compinit)",
             "_memprobe() {",
             "    local -a commands",
             "    commands=(" + " ".join(_sq("%s:%s" % (n, _zq(commands[n]["help"]))) for n in names) + ")",
             "    local i cmd=",
             "    for ((i = 2; i < CURRENT; i++)); do",
             '        [[ $words[i] != -* ]] && { cmd=$words[i]; break; }',
             "    done",
             '    if [[ -z $cmd ]]; then',
             "        _arguments '(- *)'{-h,--help}'[show help]' '(- *)'{-V,--version}'[show the version]' "
             "'1:command:->cmd' && return",
             "        _describe command commands",
             "        return",
             "    fi",
             "    shift $((i - 1)) words",
             "    (( CURRENT -= i - 1 ))",
             '    case "$cmd" in']
    for name in names:
        specs = [_zsh_spec(o) for o in commands[name]["options"]]
        if commands[name]["files"]:
            specs.append(_sq("*:file:_files"))
        elif commands[name]["words"]:
            specs.append(_sq("1:shell:(%s)" % " ".join(commands[name]["words"])))
        lines.append("        %s) _arguments -s %s ;;" % (name, " ".join(specs)))
    lines += ["    esac", "}",
              'if [[ $zsh_eval_context[-1] == loadautofunc ]]; then _memprobe "$@"; '
              "else compdef _memprobe memprobe; fi", ""]
    return "\n".join(lines)


def _zsh_spec(option):
    flags = option["flags"]
    head = ("{%s}" % ",".join(flags)) if len(flags) > 1 else flags[0]
    action = {"choice": ":value:(%s)" % " ".join(option["choices"]), "file": ":file:_files",
              "any": ":value: "}.get(option["value"], "")
    repeat = "*" if option["flags"][0] == "--only" else ""
    return "%s%s%s" % (repeat, head, _sq("[%s]%s" % (_zq(option["help"]), action)))


def fish(commands: dict) -> str:
    names = [c for c in commands if c]
    lines = ["# fish completion for memprobe: save it as ~/.config/fish/completions/memprobe.fish",
             "complete -c memprobe -f",
             "complete -c memprobe -n __fish_use_subcommand -s h -l help -d 'show help'",
             "complete -c memprobe -n __fish_use_subcommand -s V -l version -d 'show the version'"]
    for name in names:
        lines.append("complete -c memprobe -n __fish_use_subcommand -a %s -d %s"
                     % (name, _fq(commands[name]["help"])))
    for name in names:
        when = "-n %s" % _fq("__fish_seen_subcommand_from %s" % name)
        for option in commands[name]["options"]:
            flags = " ".join(("-l %s" % f[2:]) if f.startswith("--") else ("-s %s" % f[1:])
                             for f in option["flags"])
            value = {"choice": "-x -a %s" % _fq(" ".join(option["choices"])), "file": "-r -F",
                     "any": "-x"}.get(option["value"], "")
            lines.append("complete -c memprobe %s %s %s -d %s" % (when, flags, value, _fq(option["help"][:80])))
        if commands[name]["files"]:
            lines.append("complete -c memprobe %s -F" % when)
        elif commands[name]["words"]:
            lines.append("complete -c memprobe %s -a %s" % (when, _fq(" ".join(commands[name]["words"]))))
    return "\n".join(lines) + "\n"


def _fq(text):
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


SHELLS = {"bash": bash, "zsh": zsh, "fish": fish}


def script(shell: str, parser: "argparse.ArgumentParser") -> str:
    """The completion script for one shell, from the command line's whole parser."""
    return SHELLS[shell](describe(parser))
