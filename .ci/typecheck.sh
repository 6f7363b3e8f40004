#!/usr/bin/env bash
# mypy over the package where it lives: src/debtgate is the import name `debtgate`.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/mypy --config-file pyproject.toml --cache-dir /tmp/debtgate-mypy-cache -p debtgate -p debtgate_lab
