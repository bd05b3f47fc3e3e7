#!/usr/bin/env bash
# npm run demo: install, build, bring the local lab up and provision it, then show it working.
# Needs root on Debian 12 (the lab uses network namespaces and systemd-nspawn).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

[ -d node_modules ] || npm ci --no-fund --no-audit --loglevel=error
npm run build --silent

DEMO_DIR=${INFRA_DEMO_DIR:-$PWD/.demo}
CONFIG="$DEMO_DIR/infra.yaml"
mkdir -p "$DEMO_DIR"
infra() { node bin/run.js "$@"; }

echo "== infra lab up: 1 bastion + 3 web nodes (1 active, 2 standby)"
infra lab up --config "$CONFIG"

echo
echo "== infra exec all -- hostname   (web nodes are reached through the bastion)"
infra exec all --config "$CONFIG" -- hostname

echo
echo "== infra provision --yes"
infra provision --yes --config "$CONFIG"

echo
echo "== again: a re-run changes nothing"
infra provision --yes --config "$CONFIG"

# The bastion's public address on the lab link (from the lab itself, not hard-coded).
PUB=$(infra lab status --json --config "$CONFIG" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).hosts.find(h=>h.role==="bastion").publicAddress))')

echo
echo "== from this machine, as a client on the internet (bastion $PUB)"
curl -sS -o /dev/null -w 'http://example.test/x?y=1  → %{http_code} %{redirect_url}\n' --resolve example.test:80:$PUB 'http://example.test/x?y=1'
curl -sS -k -o /dev/null -w 'https://www.example.test/ → %{http_code} %{redirect_url}\n' --resolve www.example.test:443:$PUB 'https://www.example.test/'
curl -sS -k -D - -o /dev/null --resolve example.test:443:$PUB 'https://example.test/' | grep -Ei '^(HTTP|strict-transport|x-served-by)'

# --- the application: infra deploy of the sample app (examples/hello), then v2 under load, then rollback
echo
echo "== an app: examples/hello (FROM scratch, a static busybox's httpd), built on the bastion"
if ! dpkg-query -W -f='${db:Status-Status}' busybox-static 2>/dev/null | grep -qx installed; then
  apt-get update -qq && apt-get install -y -qq busybox-static >/dev/null
fi
rm -rf "$DEMO_DIR/hello" && cp -r examples/hello "$DEMO_DIR/hello" && cp /bin/busybox "$DEMO_DIR/hello/rootfs/bin/busybox"
grep -q '^app:' "$CONFIG" || cat >> "$CONFIG" <<'YAML'

# Added by npm run demo: the sample app (docs/DEPLOY.md). The flood limits are raised for the request loop below.
app:
  image: hello
  port: 8080
limits:
  requests: 100000
  connections: 1000
YAML
infra provision --yes --config "$CONFIG"
infra deploy --build "$DEMO_DIR/hello" --version v1 --yes --config "$CONFIG"
curl -sS -k --resolve example.test:443:$PUB 'https://example.test/'

echo
echo "== infra deploy v2 while a request loop runs against the bastion (4 clients)"
node scripts/load-during.mjs "$PUB" example.test -- node bin/run.js deploy --build "$DEMO_DIR/hello" --version v2 --yes --config "$CONFIG"
curl -sS -k --resolve example.test:443:$PUB 'https://example.test/'

echo
echo "== infra rollback (to v1) under the same load"
node scripts/load-during.mjs "$PUB" example.test -- node bin/run.js rollback --yes --config "$CONFIG"
infra releases --config "$CONFIG"

echo
echo "== infra status: each node's release and container"
infra status --config "$CONFIG" || true

cat <<EOF

The lab is up. Try:
  node bin/run.js lab status --config $CONFIG
  curl -k --resolve example.test:443:$PUB https://example.test/
  node bin/run.js ssh web1 --config $CONFIG
  node bin/run.js releases --config $CONFIG      # the app's releases; deploy, rollback: docs/DEPLOY.md
  node bin/run.js logs web1 --unit app --config $CONFIG
  node bin/run.js lab down --config $CONFIG      # removes every lab host, namespace and mount
EOF
