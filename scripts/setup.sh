#!/usr/bin/env bash
# Everything a fresh clone needs, given only Node 20.19+ and npm: the pinned pnpm (run
# through npx, nothing installed globally), the workspace's packages, and a build.
# Safe to run again: each step is a no-op when already done.
set -euo pipefail
source "$(dirname "$0")/env.sh"
pnpm install --frozen-lockfile
pnpm exec turbo run build
