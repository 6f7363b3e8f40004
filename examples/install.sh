#!/usr/bin/env bash
# Install what debtgate needs on Debian 12 (as root), into ./.venv of this checkout.
#   bash examples/install.sh          # runtime: nftables, conntrack, Python venv
#   bash examples/install.sh --test   # plus what the test suite needs
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

pkgs=(python3 python3-venv python3-dev gcc nftables libnftables1 conntrack iproute2 curl
      ca-certificates procps)
if (( want_test )); then
  pkgs+=(postgresql freeradius freeradius-utils chromium nginx-light wrk tcpdump)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
  echo ">> apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts these services on install; debtgate's tests run their own instances.
  for svc in freeradius postgresql nginx; do
    if command -v systemctl >/dev/null && systemctl is-active -q "$svc" 2>/dev/null; then
      systemctl stop "$svc" || true
      systemctl disable -q "$svc" 2>/dev/null || true
    fi
  done
fi

py=python3
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "debtgate needs Python >= 3.11 (found $("$py" --version))" >&2
  exit 1
fi
if [[ ! -x .venv/bin/python ]]; then
  "$py" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -U pip setuptools wheel
extra=""
(( want_test )) && extra="[test]"
# An editable install ends with setuptools' "Editable installation" notice (an
# InformationOnly, not a warning about this project); that one notice is turned off, everything else setuptools says is shown.
PYTHONWARNINGS="${PYTHONWARNINGS:+$PYTHONWARNINGS,}ignore:Editable installation" \
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extra}"
echo ">> debtgate installed: $(.venv/bin/debtgate --version)"
