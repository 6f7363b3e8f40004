#!/usr/bin/env bash
# mypy needs the import name `debtgate`; the package lives in daemon/ (pyproject maps it).
set -euo pipefail
cd "$(dirname "$0")/.."
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/debtgate"
cp -r daemon/. "$tree/debtgate/"
cp -r portal "$tree/debtgate/portal"
cp -r radius "$tree/debtgate/radius"
cd "$tree"
"$OLDPWD/.venv/bin/mypy" --config-file "$OLDPWD/pyproject.toml" --cache-dir /tmp/debtgate-mypy-cache \
  -p debtgate
