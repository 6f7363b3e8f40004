#!/usr/bin/env bash
# Install debtgate as system services on a Debian 12 gateway (as root), from this checkout:
#   bash systemd/install.sh [--root DIR]
# - /opt/debtgate/venv: the package and its dependencies
# - /etc/debtgate/debtgate.toml: from examples/ if absent (edit it, then check-config)
# - /etc/nftables.d/debtgate.nft: the ruleset with this config's values, included from
#   /etc/nftables.conf so the table and its chains exist at boot, before the daemon
# - users: debtgate-portal (the portal, no capabilities) in group debtgate (portal socket)
# - /etc/systemd/system/debtgate{,-portal}.service, enabled (not started: edit the config)
# --root DIR installs the files under DIR instead of / (packaging, tests): no users, no
# systemctl, the venv is still created under DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
root=""
if [[ "${1:-}" == "--root" ]]; then root="${2:?--root needs a directory}"; fi

venv="$root/opt/debtgate/venv"
etc="$root/etc/debtgate"
python3 -m venv "$venv"
# setuptools reuses build/ (its scratch, git-ignored): files deleted from the tree since
# the last build (templates moved, modules renamed) would travel into the install.
rm -rf build
"$venv/bin/pip" install -q --disable-pip-version-check .
install -d -m 0750 "$etc"
[[ -f "$etc/debtgate.toml" ]] || install -m 0640 examples/debtgate.toml "$etc/debtgate.toml"
[[ -f "$etc/subscribers.json" ]] || install -m 0640 examples/subscribers.json "$etc/subscribers.json"
"$venv/bin/debtgate" check-config "$etc/debtgate.toml"
install -d "$root/etc/nftables.d"
"$venv/bin/debtgate" nft-ruleset --config "$etc/debtgate.toml" > "$root/etc/nftables.d/debtgate.nft"
conf="$root/etc/nftables.conf"
touch "$conf"
grep -q 'include "/etc/nftables.d/\*.nft"' "$conf" || \
  printf '\ninclude "/etc/nftables.d/*.nft"\n' >> "$conf"
install -d "$root/etc/systemd/system"
install -m 0644 systemd/debtgate.service systemd/debtgate-portal.service "$root/etc/systemd/system/"
if [[ -z "$root" ]]; then
  getent group debtgate >/dev/null || groupadd -r debtgate
  id debtgate-portal >/dev/null 2>&1 || \
    useradd -r -g debtgate -G debtgate -s /usr/sbin/nologin -d /nonexistent debtgate-portal
  if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
    systemctl daemon-reload
    systemctl enable nftables debtgate debtgate-portal
  fi
fi
echo "installed; edit $etc/debtgate.toml, then: systemctl start debtgate debtgate-portal"
