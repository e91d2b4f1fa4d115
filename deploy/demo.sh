#!/usr/bin/env bash
# Runs what exists of Switchboard on loopback: an auth-server, three supernodes joined into one
# overlay, alice online, bob looking her up and sending her a message directly; then alice's
# supernode is killed (SIGKILL), alice re-homes and bob finds her again; then the network keeps
# running until Ctrl-C. To be replaced by `testbed demo`.
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
supernodes=
alice=
cleanup() {
    for pid in $alice $supernodes $server; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$dir"
}
trap cleanup EXIT

echo "== auth-server init"
pubkey=$("$bin/auth-server" init --data-dir "$dir/auth")
echo "auth public key (give it to every node with --trust): $pubkey"

echo "== auth-server user add alice, bob, and sn1..sn3 (supernode service accounts)"
echo "alice-password" | "$bin/auth-server" user add alice --data-dir "$dir/auth"
echo "bob-password" | "$bin/auth-server" user add bob --data-dir "$dir/auth"
for sn in sn1 sn2 sn3; do
    echo "$sn-password" | "$bin/auth-server" user add "$sn" --role supernode --data-dir "$dir/auth"
    echo "$sn-password" >"$dir/$sn.password"
done

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

declare -A sn_addr sn_pid sn_metrics
start_supernode() {
    local name=$1
    shift
    "$bin/supernode" serve --data-dir "$dir/$name" --listen 127.0.0.1:0 --metrics 127.0.0.1:0 \
        --auth "$addr" --trust "$pubkey" --user "$name" --password-file "$dir/$name.password" "$@" \
        >"$dir/$name.out" 2>"$dir/$name.log" &
    sn_pid[$name]=$!
    supernodes="$supernodes $!"
    for _ in $(seq 100); do
        grep -q '^listening on ' "$dir/$name.out" && break
        sleep 0.1
    done
    sn_addr[$name]=$(sed -n 's/^listening on //p' "$dir/$name.out")
    sn_metrics[$name]=$(sed -n 's/^metrics on //p' "$dir/$name.out")
    [ -n "${sn_addr[$name]}" ] || { echo "$name did not start:"; cat "$dir/$name.log"; exit 1; }
    echo "$name listening on ${sn_addr[$name]}"
}
members_live() {
    exec 4<>"/dev/tcp/${1%:*}/${1##*:}"
    printf 'GET /metrics HTTP/1.1\r\nHost: demo\r\n\r\n' >&4
    sed -n 's/^switchboard_overlay_members_live //p' <&4 | tr -d '\r'
    exec 4>&-
}

echo "== supernode serve: sn1, then sn2 and sn3 joining the overlay through sn1 (--seed)"
start_supernode sn1
start_supernode sn2 --seed "${sn_addr[sn1]}"
start_supernode sn3 --seed "${sn_addr[sn1]}"
for _ in $(seq 100); do
    [ "$(members_live "${sn_metrics[sn3]}")" = 3 ] && break
    sleep 0.1
done
echo "overlay members seen by sn3: $(members_live "${sn_metrics[sn3]}")"

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

echo "== kill -9 alice's supernode"
home=$(sed -n 's/.*online via [0-9a-f]* at \([0-9.:]*\).*/\1/p' "$dir/alice.err" | tail -1)
for name in sn1 sn2 sn3; do
    if [ "${sn_addr[$name]}" = "$home" ]; then
        kill -KILL "${sn_pid[$name]}"
        wait "${sn_pid[$name]}" 2>/dev/null || true
        echo "killed $name ($home)"
    fi
done
for _ in $(seq 100); do
    [ "$(grep -c 'online via' "$dir/alice.err")" -ge 2 ] && break
    sleep 0.1
done
grep 'online via\|lost' "$dir/alice.err" | tail -2
echo "== client lookup alice (as bob), after the outage"
"$bin/client" lookup alice --profile "$dir/bob"

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
echo "running: auth-server $addr, supernodes ${sn_addr[*]} (one killed), alice online; Ctrl-C to stop"
wait "$server"
