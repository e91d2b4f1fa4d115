#!/usr/bin/env bash
# Chaos against the running compose testbed (deploy/docker-compose.yml): prints PASS or FAIL
# per step and exits non-zero if any step failed.
#
#   1. lookups between all four clients succeed;
#   2. `docker kill` two supernodes: their clients re-home, lookups succeed again, and the
#      standby mega activates;
#   3. `docker network disconnect` the last ordinary supernode for 20 s, then reconnect: it
#      rejoins the overlay;
#   4. restart the auth-server: online clients stay online and lookups keep working while it
#      is down.
#
# Usage: deploy/chaos.sh   (after `docker-compose -f deploy/docker-compose.yml up -d`)
set -uo pipefail
cd "$(dirname "$0")"
compose() { docker-compose -f docker-compose.yml "$@"; }
failures=0
pass() { printf 'PASS  %s\n' "$1"; }
fail() { printf 'FAIL  %s\n' "$1"; failures=$((failures + 1)); }
# The container of a service.
cid() { compose ps -q "$1"; }
clients=(alice bob carol dave)

# Succeeds when `client lookup WHOM` from WHO's container finds WHOM.
lookup() {
    docker exec "$(cid "$1")" /usr/local/bin/client lookup "$2" --profile /profile > /dev/null 2>&1
}

# Succeeds when every client finds every other one; retries for up to $1 seconds.
all_lookups() {
    local deadline=$((SECONDS + $1)) missing
    while :; do
        missing=""
        for a in "${clients[@]}"; do
            for b in "${clients[@]}"; do
                [ "$a" = "$b" ] && continue
                lookup "$a" "$b" || missing="$missing $a->$b"
            done
        done
        [ -z "$missing" ] && return 0
        if [ $SECONDS -ge "$deadline" ]; then
            echo "      lookups failing:$missing"
            return 1
        fi
        sleep 1
    done
}

# A gauge from the /metrics published on 127.0.0.1:$1.
metric() {
    (
        exec 3<> "/dev/tcp/127.0.0.1/$1" || exit 0
        printf 'GET /metrics HTTP/1.0\r\nHost: chaos\r\n\r\n' >&3
        timeout 2 cat <&3
    ) 2> /dev/null | awk -v m="$2" '$1 == m { print $2 }'
}

# Waits up to $1 seconds for `metric $2 $3` to equal $4.
wait_metric() {
    local deadline=$((SECONDS + $1))
    while [ "$(metric "$2" "$3")" != "$4" ]; do
        [ $SECONDS -ge "$deadline" ] && return 1
        sleep 1
    done
}

# The supernode that WHO's online session is on: the last "online via" line of its log.
home_of() { compose logs --no-color "$1" 2>/dev/null | grep 'online via' | tail -n 1; }

echo "waiting for the four clients to come online"
deadline=$((SECONDS + 120))
for c in "${clients[@]}"; do
    until home_of "$c" | grep -q 'online via'; do
        if [ $SECONDS -ge $deadline ]; then echo "      $c never came online"; break; fi
        sleep 1
    done
done

if all_lookups 30; then pass "lookups between all clients"; else fail "lookups between all clients"; fi

# 2. Two supernodes die at once.
docker kill "$(cid sn1)" "$(cid sn2)" > /dev/null
killed=$SECONDS
if all_lookups 60; then
    pass "after killing sn1 and sn2: clients re-homed and lookups succeed ($((SECONDS - killed)) s)"
else
    fail "after killing sn1 and sn2: lookups"
fi
if wait_metric 60 9714 switchboard_supernode_mega_active 1; then
    pass "the standby mega activated"
else
    fail "the standby mega activated"
fi

# 3. The last ordinary supernode is cut off for 20 s, then comes back.
network=$(docker inspect --format '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}' "$(cid sn3)")
docker network disconnect "$network" "$(cid sn3)"
cut=$SECONDS
if wait_metric 20 9714 switchboard_overlay_members_live 1; then
    pass "the mega saw sn3 cut off ($((SECONDS - cut)) s)"
else
    fail "the mega saw sn3 cut off (it sees $(metric 9714 switchboard_overlay_members_live) live)"
fi
sleep $((20 - (SECONDS - cut) > 0 ? 20 - (SECONDS - cut) : 0))
docker network connect --ip 10.251.20.13 "$network" "$(cid sn3)"
# Both the mega and sn3 see each other live again.
if wait_metric 60 9713 switchboard_overlay_members_live 2 && wait_metric 30 9714 switchboard_overlay_members_live 2; then
    pass "sn3 disconnected for 20 s rejoined the overlay"
else
    fail "sn3 disconnected for 20 s rejoined the overlay (sn3 sees $(metric 9713 switchboard_overlay_members_live), the mega $(metric 9714 switchboard_overlay_members_live))"
fi
if all_lookups 60; then pass "lookups after the partition healed"; else fail "lookups after the partition healed"; fi

# 4. The auth-server goes away and comes back; the directory does not need it.
docker stop "$(cid auth)" > /dev/null
if all_lookups 30; then pass "lookups while the auth-server is down"; else fail "lookups while the auth-server is down"; fi
docker start "$(cid auth)" > /dev/null
still=0
for c in "${clients[@]}"; do
    [ "$(docker inspect --format '{{.State.Running}}' "$(cid "$c")")" = true ] || still=1
done
if [ $still -eq 0 ] && all_lookups 30; then
    pass "auth-server restarted: every client stayed online"
else
    fail "auth-server restarted: every client stayed online"
fi

if [ $failures -eq 0 ]; then
    echo "chaos: every step passed"
else
    echo "chaos: $failures step(s) failed"
fi
exit $((failures > 0))
