#!/bin/sh
# One FreeBSD leg of .github/workflows/probe.yml, run as root inside the VM from the checkout:
#     sh tools/ci/freebsd-leg.sh 0|1
# Sets kern.elf64.allow_wx, then probes with a Python started afterwards (the sysctl is read
# when a program is executed), writes memprobe-freebsd14-allow-wx-N.yaml and gates it with
# .github/expect/freebsd14-allow-wx-N.yaml.
set -eu

allow_wx=${1:?usage: freebsd-leg.sh 0|1}
case "$allow_wx" in
    0|1) ;;
    *) echo "freebsd-leg.sh: allow_wx must be 0 or 1, not $allow_wx" >&2; exit 1 ;;
esac

python=${PYTHON:-python3.11}
report="memprobe-freebsd14-allow-wx-$allow_wx.yaml"

sysctl "kern.elf64.allow_wx=$allow_wx"
freebsd-version -ku
"$python" -m probe run --quiet --output "$report"
"$python" -m probe show "$report"
"$python" -m probe check --expect ".github/expect/freebsd14-allow-wx-$allow_wx.yaml" "$report"
