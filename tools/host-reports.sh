#!/usr/bin/env bash
# Reference reports of this host (Linux x86_64), plain and under the two confinements
# systemd's MemoryDenyWriteExecute= uses: the PR_SET_MDWE prctl and its seccomp filter.
# Needs root (the seccomp filter sets no_new_privs itself). Cross-architecture reports
# come from tools/cross/rig.py.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
py=${PYTHON:-python3}
arch=$($py -c 'from probe.engine import runner as _runner; print(_runner.detect_arch())')
run() {  # name, note, confinement options...
    local name=$1 note=$2; shift 2
    MEMPROBE_PROVENANCE_NOTE="$note" $py tests/helpers/confine.py "$@" -- \
        $py -m probe run --quiet --output "reports/linux-$arch-$name.yaml"
}
run plain "native; no confinement"
run mdwe "native; under tests/helpers/confine.py --mdwe (prctl PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN)" --mdwe
run seccomp "native; under tests/helpers/confine.py --seccomp errno (systemd MemoryDenyWriteExecute= seccomp rules, EPERM)" --seccomp errno
