#!/usr/bin/env bash
# Quick start: install debtgate and run it in a lab of network namespaces on this machine,
# with the embedded default (a local subscriber file). Ctrl-C tears the lab down.
#   bash examples/lab.sh [--billing postgres]
set -euo pipefail
cd "$(dirname "$0")/.."
bash examples/install.sh
exec .venv/bin/debtgate lab "$@"
