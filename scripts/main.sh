#!/usr/bin/env bash
# The main job. Until the app exists it is the kernels' self-test (known answers, round
# trips against OpenSSL, chaining) followed by their benchmark against peers and
# ceilings, which rewrites packages/kernels/bench/results/*.json and the README tables.
set -euo pipefail
source "$(dirname "$0")/env.sh"
bash scripts/setup.sh
pnpm --filter @ipukit/kernels run selftest
pnpm exec turbo run bench --concurrency=1
