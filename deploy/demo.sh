#!/usr/bin/env bash
# Runs what exists of Switchboard on loopback: an auth-server, a supernode, alice online, and
# bob looking her up and sending her a message directly; then keeps the network running until
# Ctrl-C. To be replaced by `testbed demo` (several supernodes, an outage) with the overlay.
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
supernode=
alice=
cleanup() {
    for pid in $alice $supernode $server; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$dir"
}
trap cleanup EXIT

echo "== auth-server init"
pubkey=$("$bin/auth-server" init --data-dir "$dir/auth")
echo "auth public key (give it to every node with --trust): $pubkey"

echo "== auth-server user add alice, bob, and sn1 (a supernode's service account)"
echo "alice-password" | "$bin/auth-server" user add alice --data-dir "$dir/auth"
echo "bob-password" | "$bin/auth-server" user add bob --data-dir "$dir/auth"
echo "sn1-password" | "$bin/auth-server" user add sn1 --role supernode --data-dir "$dir/auth"
echo "sn1-password" >"$dir/sn1.password"

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

echo "== supernode serve"
"$bin/supernode" serve --data-dir "$dir/sn1" --listen 127.0.0.1:0 --auth "$addr" --trust "$pubkey" \
    --user sn1 --password-file "$dir/sn1.password" >"$dir/sn1.out" 2>"$dir/sn1.log" &
supernode=$!
for _ in $(seq 100); do
    grep -q '^listening on ' "$dir/sn1.out" && break
    sleep 0.1
done
sn1=$(sed -n 's/^listening on //p' "$dir/sn1.out")
[ -n "$sn1" ] || { echo "supernode did not start:"; cat "$dir/sn1.log"; exit 1; }
echo "supernode listening on $sn1"

echo "== client login --user alice, then --user bob"
echo "alice-password" | "$bin/client" login --profile "$dir/alice" --auth "$addr" --trust "$pubkey" --user alice
echo "bob-password" | "$bin/client" login --profile "$dir/bob" --auth "$addr" --trust "$pubkey" --user bob

echo "== client online (alice)"
"$bin/client" online --profile "$dir/alice" --listen 127.0.0.1:0 >"$dir/alice.out" 2>"$dir/alice.err" &
alice=$!
for _ in $(seq 100); do
    grep -q 'online via' "$dir/alice.err" && break
    sleep 0.1
done
cat "$dir/alice.err"

echo "== client lookup alice (as bob)"
"$bin/client" lookup alice --profile "$dir/bob"
echo "== client send alice 'hello from bob' (as bob)"
"$bin/client" send alice "hello from bob" --profile "$dir/bob"
sleep 0.3
echo "alice printed: $(cat "$dir/alice.out")"

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
echo "running: auth-server $addr, supernode $sn1, alice online; Ctrl-C to stop"
wait "$server"
