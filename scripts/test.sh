#!/usr/bin/env bash
# Every test: type checks, unit and property tests, browser tests (headless Chromium) and
# publint on every package. Installs (with Debian's chromium and tshark) and builds first.
set -euo pipefail
source "$(dirname "$0")/env.sh"
bash scripts/setup.sh
bash scripts/ensure-debian.sh
export CHROMIUM_PATH="$(command -v chromium)"
pnpm exec turbo run typecheck test test:browser lint:publish --concurrency=1
