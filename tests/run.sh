#!/usr/bin/env bash
# Quick start: install what the tests need and run the whole suite (as root: the
# network-namespace tests use the real kernel). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash examples/install.sh --test
echo ">> ruff"
.venv/bin/ruff check src tests bench
echo ">> import-linter (imports point down, no cycles)"
.venv/bin/lint-imports
echo ">> mypy (strict, every package)"
bash .ci/typecheck.sh
echo ">> pytest"
exec .venv/bin/python -m pytest -q -p no:cacheprovider tests "$@"
