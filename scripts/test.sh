#!/usr/bin/env bash
# Quick-start command 2: set everything up, lint, and run the whole test suite (notebooks included).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh dev
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
