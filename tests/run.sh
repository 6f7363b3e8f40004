#!/usr/bin/env bash
# Quick start: install what the tests need and run the whole suite (as root: the
# network-namespace tests use the real kernel). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash examples/install.sh --test
echo ">> ruff"
.venv/bin/ruff check daemon portal radius
echo ">> mypy (strict on the core)"
.venv/bin/mypy --config-file pyproject.toml -p debtgate.core -p debtgate.model \
  -p debtgate.validate -p debtgate.config
echo ">> pytest"
exec .venv/bin/python -m pytest -q -p no:cacheprovider tests "$@"
