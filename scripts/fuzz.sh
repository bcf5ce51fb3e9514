#!/usr/bin/env bash
# The long randomized runs: every property test at IPUKIT_FUZZ_SCALE times its CI count
# (default 100: 240 000 XTS cases against OpenSSL, 6 000 CRC cases per CRC, 15 000 random
# PCIe trees against the P2PDMA oracle, 300 000 random MMIO accesses; 6 M random NVMe reads
# and writes verified against a model, and the NVMe command and register fuzzer; 100 000 NVMe/TCP
# fuzz sessions, about 2.6 M PDUs). CI runs
# scale 1.
set -euo pipefail
source "$(dirname "$0")/env.sh"
bash scripts/setup.sh
export IPUKIT_FUZZ_SCALE="${IPUKIT_FUZZ_SCALE:-100}"
time pnpm --filter @ipukit/kernels exec vitest run test/aes-xts.test.ts test/crc32c.test.ts test/crc16-t10dif.test.ts test/crc64-nvme.test.ts
time pnpm --filter @ipukit/pcie exec vitest run test/p2pdma.test.ts test/topology.test.ts
time pnpm --filter @ipukit/nvme exec vitest run test/random-io.test.ts test/fuzz.test.ts test/fuzz-raw-host.test.ts test/prp.test.ts test/sgl.test.ts
time pnpm --filter @ipukit/nvmf exec vitest run test/fuzz-pdu.test.ts
