#!/usr/bin/env bash
# Builds Switchboard's images without a registry (nothing is pulled): the release binaries,
# each in an image FROM scratch holding only the binary, the shared libraries it links (as
# `ldd` lists them, with the dynamic loader) and /etc/nsswitch.conf, so that glibc resolves
# service names through compose's DNS and /etc/hosts (glibc 2.34 and later carry the `files`
# and `dns` lookups inside libc; deploy/docker-compose.yml's `auth:7700` exercises it).
#
# Usage: deploy/build-images.sh    (tags switchboard/auth-server, supernode, client :latest)
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p switchboard-auth-server -p switchboard-supernode \
    -p switchboard-client-app --bins
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for bin in auth-server supernode client; do
    root="$work/$bin/rootfs"
    mkdir -p "$root/usr/local/bin" "$root/etc" "$root/tmp"
    chmod 1777 "$root/tmp"
    # Without debug information: the release profile keeps it for profiling on the host.
    objcopy --strip-debug "target/release/$bin" "$root/usr/local/bin/$bin"
    # Every library the binary links, at the path the loader looks for it.
    ldd "target/release/$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
        while read -r lib; do
            mkdir -p "$root$(dirname "$lib")"
            cp -L "$lib" "$root$lib"
        done
    printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"
    cat > "$work/$bin/Dockerfile" <<DOCKERFILE
FROM scratch
COPY rootfs/ /
ENTRYPOINT ["/usr/local/bin/$bin"]
DOCKERFILE
    # (The legacy builder's deprecation notice is noise here: shown only with a failure.)
    if ! out=$(docker build --quiet --tag "switchboard/$bin:latest" "$work/$bin" 2>&1); then
        printf '%s\n' "$out" >&2
        exit 1
    fi
    size=$(docker image inspect --format '{{.Size}}' "switchboard/$bin:latest")
    printf 'switchboard/%-12s %s MB  (%s)\n' "$bin:latest" "$(awk "BEGIN { printf \"%.1f\", $size / 1000000 }")" \
        "$(find "$root" -type f | sed "s|$root||" | tr '\n' ' ')"
done
