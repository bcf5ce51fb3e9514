#!/usr/bin/env bash
# The main job: `ipukit run` with its defaults (or the flags given: npm run main -- --size 1G).
# A host writes 256 MiB through the emulated IPU (AES-XTS-256, Type 1 PI) to an embedded
# NVMe/TCP target, reads it back, verifies it and prints where the time and bytes went.
set -euo pipefail
source "$(dirname "$0")/env.sh"
bash scripts/setup.sh
exec node apps/ipukit/bin/ipukit.mjs run "$@"
