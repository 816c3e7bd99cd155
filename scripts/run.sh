#!/usr/bin/env bash
# Quick-start command 1: set everything up, then run the main job.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
.venv/bin/linear-nets data info
.venv/bin/linear-nets train softmax
