#!/usr/bin/env bash
# Every benchmark, one package at a time; rewrites the committed results and tables.
set -euo pipefail
source "$(dirname "$0")/env.sh"
bash scripts/setup.sh
pnpm exec turbo run bench --concurrency=1
