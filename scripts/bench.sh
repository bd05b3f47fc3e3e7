#!/usr/bin/env bash
# npm run bench: measured figures on the local lab (see scripts/bench.ts). Needs root on Debian 12.
# Holds the lab lock, so it never runs at the same time as the lab tests on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-fund --no-audit --loglevel=error
mkdir -p /run/lock
exec flock -x /run/lock/infra-lab-test.lock npx tsx scripts/bench.ts "$@"
