#!/usr/bin/env bash
# Runs what exists of Switchboard on loopback: an auth-server with an account, a client that
# logs in (and one that gets the password wrong), then keeps the auth-server running until
# Ctrl-C. Replaced by `testbed demo` once the supernodes exist.
#
#   ./deploy/demo.sh                 build (release) and run
#   SWITCHBOARD_BIN_DIR=target/debug DEMO_ONCE=1 ./deploy/demo.sh   (what the test runs)
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${SWITCHBOARD_BIN_DIR:-}
if [ -z "$bin" ]; then
    cargo build --release --bins
    bin=target/release
fi

dir=$(mktemp -d -t switchboard-demo-XXXXXX)
server=
cleanup() {
    if [ -n "$server" ]; then
        kill -TERM "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT

echo "== auth-server init"
pubkey=$("$bin/auth-server" init --data-dir "$dir/auth")
echo "auth public key (give it to every node with --trust): $pubkey"

echo "== auth-server user add alice (password on stdin)"
echo "alice-password" | "$bin/auth-server" user add alice --data-dir "$dir/auth"

echo "== auth-server serve"
"$bin/auth-server" serve --data-dir "$dir/auth" --listen 127.0.0.1:0 --metrics 127.0.0.1:0 \
    >"$dir/auth.out" 2>"$dir/auth.log" &
server=$!
for _ in $(seq 100); do
    grep -q '^listening on ' "$dir/auth.out" && break
    sleep 0.1
done
addr=$(sed -n 's/^listening on //p' "$dir/auth.out")
metrics=$(sed -n 's/^metrics on //p' "$dir/auth.out")
[ -n "$addr" ] || { echo "auth-server did not start:"; cat "$dir/auth.log"; exit 1; }
echo "auth-server listening on $addr, metrics on http://$metrics/metrics"

echo "== client login --user alice"
echo "alice-password" | "$bin/client" login --profile "$dir/alice" --auth "$addr" --trust "$pubkey" --user alice

echo "== client login --user alice, wrong password (expected to fail)"
echo "guess" | "$bin/client" login --profile "$dir/mallory" --auth "$addr" --trust "$pubkey" --user alice || true

echo "== metrics"
exec 3<>"/dev/tcp/${metrics%:*}/${metrics##*:}"
printf 'GET /metrics HTTP/1.1\r\nHost: demo\r\n\r\n' >&3
grep '^switchboard_auth' <&3 || true
exec 3>&-

if [ -n "${DEMO_ONCE:-}" ]; then
    echo "demo done"
    exit 0
fi
echo "auth-server running at $addr; Ctrl-C to stop"
wait "$server"
