#!/usr/bin/env bash
# The container image, built and run for real: from a clean clone of HEAD, build the runtime image
# on a stand-in for node:<major>-slim (no Docker Hub here), run it the way production does
# (--read-only, no capabilities, uid 1000) and check health, batching and a drain on SIGTERM; then
# bring up infra/compose.yaml's fleet (two proxies sharing one Redis) and check that it stays within
# the upstream's limit. Run as root by .ci/run; needs docker.io, debootstrap, docker-compose, git, node
# and npm (apt-get install docker.io debootstrap docker-compose).
#
# Docker: Debian's docker.io (20.10). Its own client (/usr/bin/docker) is used, not a newer one found
# first on PATH: clients from 23 on build with BuildKit only through the buildx plugin, which Debian
# does not package. No daemon running? One is started (`--iptables=false --bridge=none`, as these
# machines allow) and stopped at the end; if it cannot start, this fails with its log. Builds run
# with --network host (with --bridge=none, RUN steps have no other network).
#
# Compose: Debian has only docker-compose v1 (1.29, no `docker compose` v2 plugin). v1 rejects the
# top-level `name:` of compose.yaml, so the fleet runs from a copy without it (project name by -p);
# everything else in compose.yaml is used as is, with infra/compose.base-images.yaml on top.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel)
export DOCKER=${DOCKER:-/usr/bin/docker}
PROJECT=batch-proxy-image-test
LABEL=batch-proxy-image-test
artifacts="$repo/test/.artifacts/image"
started=$SECONDS

step() { printf '\n== %s (%ss)\n' "$*" "$((SECONDS - started))"; }
fail() {
  echo "test/image: FAILED: $*" >&2
  exit 1
}
docker() { "$DOCKER" "$@"; }

# --- Preconditions: each missing piece is a failure with its reason, never a skip. ---------------
[ "$(id -u)" = 0 ] || fail "needs root (debootstrap, chroot and dockerd); run it as root or through .ci/run"
missing=()
for cmd in "$DOCKER" dockerd debootstrap docker-compose git node npm; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
done
[ ${#missing[@]} -eq 0 ] ||
  fail "missing ${missing[*]} (apt-get install docker.io debootstrap docker-compose; node and npm)"

mkdir -p "$artifacts"
work=$(mktemp -d /tmp/batch-proxy-image.XXXXXX)
dockerd_pid=
upstream_pid=
compose=()

cleanup() {
  local status=$?
  set +e
  [ -n "$upstream_pid" ] && kill "$upstream_pid" 2>/dev/null && wait "$upstream_pid" 2>/dev/null
  if [ ${#compose[@]} -gt 0 ]; then
    "${compose[@]}" logs --no-color >"$artifacts/compose.log" 2>&1
    "${compose[@]}" down --volumes --remove-orphans --timeout 30 >/dev/null 2>&1
  fi
  remove_leftovers
  if [ -n "$dockerd_pid" ]; then
    kill "$dockerd_pid" 2>/dev/null
    for _ in $(seq 1 150); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$dockerd_pid" 2>/dev/null && echo "dockerd did not stop within 30 s" >&2
  fi
  rm -rf "$work"
  echo "test/image: $([ $status = 0 ] && echo passed || echo FAILED) in $((SECONDS - started)) s"
  exit $status
}
trap cleanup EXIT

# Containers of an earlier run that was killed before its cleanup (the fleet's proxies restart with
# the daemon, and would hold the fleet's ports).
remove_leftovers() {
  local ids
  ids=$( (docker ps -aq --filter "label=$LABEL"
    docker ps -aq --filter "label=com.docker.compose.project=$PROJECT") 2>/dev/null | sort -u)
  # shellcheck disable=SC2086
  [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1
  docker network rm "${PROJECT}_default" >/dev/null 2>&1 || true
  return 0
}

# --- The daemon. -----------------------------------------------------------------------------------
start_dockerd() { # [extra dockerd flags...]
  local log="$artifacts/dockerd.log"
  dockerd --iptables=false --bridge=none "$@" >"$log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 1 150); do
    docker info >/dev/null 2>&1 && return 0
    kill -0 "$dockerd_pid" 2>/dev/null || break
    sleep 0.2
  done
  kill "$dockerd_pid" 2>/dev/null && wait "$dockerd_pid" 2>/dev/null
  dockerd_pid=
  echo "--- dockerd $* (last lines of $log):" >&2
  tail -15 "$log" >&2
  return 1
}

step "Docker daemon"
if docker info >/dev/null 2>&1; then
  echo "using the running daemon"
else
  # overlay2 first; where the kernel or the sandbox refuses it, vfs (slower, always works).
  start_dockerd || { echo "retrying with the vfs storage driver" >&2 && start_dockerd --storage-driver vfs; } ||
    fail "the Docker daemon did not start (its log is above and in $artifacts/dockerd.log)"
fi
docker version --format 'client {{.Client.Version}} (API {{.Client.APIVersion}}), daemon {{.Server.Version}} (API {{.Server.APIVersion}})' ||
  fail "the Docker client cannot talk to the daemon"
echo "storage driver: $(docker info --format '{{.Driver}}')"
remove_leftovers

# --- A clean clone of HEAD: what CI would build. ---------------------------------------------------
step "clean clone of HEAD"
head=$(git -C "$repo" rev-parse HEAD)
git clone --quiet "$repo" "$work/src"
git -C "$work/src" checkout --quiet --detach "$head"
src="$work/src"
echo "$head"
[ -z "$(git -C "$repo" status --porcelain --untracked-files=no)" ] ||
  echo "note: uncommitted changes in $repo are not part of this build"

# --- Stand-in base images. -------------------------------------------------------------------------
step "stand-in base images"
node_image_default=$(sed -n 's/^ARG NODE_IMAGE=//p' "$src/infra/docker/Dockerfile")
node_major=$(echo "$node_image_default" | sed -n 's/^node:\([0-9]*\).*/\1/p')
[ -n "$node_major" ] || fail "cannot read the Node major from ARG NODE_IMAGE=$node_image_default"
base=$("$here/standin-base.sh" "$node_major") || fail "the stand-in for $node_image_default was not built"
echo "$node_image_default -> $base"
redis_image=batch-proxy-standin/redis:bookworm
DOCKER_BUILDKIT=1 docker build -q --network host --build-arg "BASE=$base" -t "$redis_image" \
  "$here/redis" >/dev/null || fail "the stand-in Redis image was not built"
echo "redis -> $redis_image"

# --- The runtime image. ----------------------------------------------------------------------------
# Cache mounts go first: a builder that keeps layers but not its cache mounts is the usual CI case,
# and the build must not depend on them.
step "build the runtime image"
docker builder prune --force --filter type=exec.cachemount >/dev/null
image=$PROJECT:runtime
build_start=$SECONDS
DOCKER_BUILDKIT=1 docker build --network host --progress plain --build-arg "NODE_IMAGE=$base" \
  -f "$src/infra/docker/Dockerfile" --target runtime -t "$image" "$src" >"$artifacts/build.log" 2>&1 ||
  { tail -30 "$artifacts/build.log" >&2; fail "docker build of the runtime image (log: $artifacts/build.log)"; }
echo "built in $((SECONDS - build_start)) s: $(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.1f MB", $1/1e6}') with the base"
app_bytes=$(docker run --rm --network none --entrypoint du "$image" -sb /app | cut -f1)
unread=$(docker run --rm --network none --entrypoint find "$image" /app -type f \
  \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) | wc -l)
echo "/app: $((app_bytes / 1000)) kB, $unread source maps or type declarations"
[ "$unread" = 0 ] || fail "the image ships $unread .map/.d.ts files"
user=$(docker image inspect -f '{{.Config.User}}' "$image")
[ "${user%%:*}" = 1000 ] || fail "the image's USER is '$user', not 1000"

# The fleet's images, built by compose from the same Dockerfile (the runtime stage comes from the
# cache just filled). A `docker` first on PATH that is Debian's: compose v1 shells out to it.
step "compose build"
mkdir -p "$work/bin"
ln -s "$DOCKER" "$work/bin/docker"
sed '/^name:/d' "$src/infra/compose.yaml" >"$src/infra/compose.v1.yaml"
compose=(env PATH="$work/bin:$PATH" COMPOSE_DOCKER_CLI_BUILD=1 DOCKER_BUILDKIT=1 BUILD_NETWORK=host
  NODE_IMAGE="$base" REDIS_IMAGE="$redis_image"
  docker-compose --ansi never -p "$PROJECT" -f "$src/infra/compose.v1.yaml" -f "$src/infra/compose.base-images.yaml")
# One service per image: proxy-b and load share theirs with proxy-a and upstream.
"${compose[@]}" build upstream proxy-a >"$artifacts/compose-build.log" 2>&1 ||
  { tail -30 "$artifacts/compose-build.log" >&2; fail "docker-compose build (log: $artifacts/compose-build.log)"; }
demo_image=$(sed -n 's/^ *image: *\(batch-proxy-demo:.*\)$/\1/p' "$src/infra/compose.yaml" | head -1)

# --- One container, as production runs it. --------------------------------------------------------
step "the runtime image, read-only and without capabilities"
# The repo's fake upstream (test/fake-upstream, with its server wrapper from test/demo), as the demo
# image compiled it, run by the host's node. Answers take a second, so a call can be caught in flight.
cid=$(docker create "$demo_image")
docker cp "$cid:/src/test/demo/dist" "$work/upstream" >/dev/null
docker rm "$cid" >/dev/null
echo '{"type":"module"}' >"$work/upstream/package.json"
# Four distinct ports in one go: separate probes may get the same port back once it is closed.
read -r fake_port stats_port proxy_port admin_port < <(node -e '
  const net = require("net");
  const servers = [0, 1, 2, 3].map(() => net.createServer().listen(0, "127.0.0.1"));
  Promise.all(servers.map((s) => new Promise((r) => s.on("listening", r)))).then(() => {
    console.log(servers.map((s) => s.address().port).join(" "));
    for (const s of servers) s.close();
  });')
FAKE_HOST=127.0.0.1 FAKE_PORT=$fake_port FAKE_STATS_PORT=$stats_port FAKE_LATENCY_MS=1000 \
  node "$work/upstream/demo/fake-upstream-server.js" >"$artifacts/fake-upstream.log" 2>&1 &
upstream_pid=$!
for _ in $(seq 1 100); do
  node -e "fetch('http://127.0.0.1:$stats_port/stats').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))" && break
  kill -0 "$upstream_pid" 2>/dev/null || fail "the fake upstream exited: $(cat "$artifacts/fake-upstream.log")"
  sleep 0.1
done

container=$PROJECT-proxy
# The image's own HEALTHCHECK command, polled every second instead of ten.
docker run -d --name "$container" --label "$LABEL" --network host \
  --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges --health-interval 1s \
  -e HOST=127.0.0.1 -e ADMIN_HOST=127.0.0.1 -e PORT="$proxy_port" -e ADMIN_PORT="$admin_port" \
  -e UPSTREAM_URL="http://127.0.0.1:$fake_port" -e BATCH_WINDOW_MS=500 -e LOG_LEVEL=warn \
  "$image" >/dev/null
health=starting
for _ in $(seq 1 60); do
  health=$(docker inspect -f '{{.State.Health.Status}}' "$container")
  [ "$health" = starting ] || break
  sleep 0.5
done
echo "  $([ "$health" = healthy ] && echo 'ok  ' || echo FAIL) HEALTHCHECK: $health"
[ "$health" = healthy ] || { docker logs "$container" >&2; fail "the container is $health"; }
pid=$(docker inspect -f '{{.State.Pid}}' "$container")
uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
cap_eff=$(awk '/^CapEff:/ {print $2}' "/proc/$pid/status")
echo "  $([ "$uid" = 1000 ] && echo 'ok  ' || echo FAIL) PID 1 runs as uid $uid"
echo "  $([ "$cap_eff" = 0000000000000000 ] && echo 'ok  ' || echo FAIL) with capabilities $cap_eff"
[ "$uid" = 1000 ] && [ "$cap_eff" = 0000000000000000 ] || fail "the proxy runs as uid $uid with capabilities $cap_eff"
node "$here/checks.mjs" batch "http://127.0.0.1:$proxy_port" "http://127.0.0.1:$fake_port" \
  "http://127.0.0.1:$stats_port/stats" || fail "batching through the image"
node "$here/checks.mjs" sigterm "http://127.0.0.1:$proxy_port" "http://127.0.0.1:$stats_port/stats" \
  "$DOCKER" "$container" || { docker logs "$container" >&2; fail "SIGTERM with a call in flight"; }
docker rm "$container" >/dev/null
kill "$upstream_pid" && wait "$upstream_pid" 2>/dev/null
upstream_pid=

# --- The compose fleet. ----------------------------------------------------------------------------
step "the compose fleet: two proxies, one Redis"
for port in $(grep -o '127\.0\.0\.1:[0-9]*:' "$src/infra/compose.yaml" | cut -d: -f2); do
  node -e "require('net').createServer().once('error',()=>process.exit(1)).listen($port,'127.0.0.1',function(){this.close()})" ||
    fail "the fleet publishes 127.0.0.1:$port, which something on this machine already uses"
done
"${compose[@]}" up -d --no-build redis upstream proxy-a proxy-b >"$artifacts/compose-up.log" 2>&1 ||
  { cat "$artifacts/compose-up.log" >&2; fail "docker-compose up"; }
# The load client seeds the fake upstream, then offers load in phases up to just under the budget
# the upstream enforces (4 batch calls a second), round-robin over both proxies; it exits non-zero
# if any call went unanswered.
load_status=0
"${compose[@]}" run --rm load >"$artifacts/load.log" 2>&1 || load_status=$?
grep -v '^\[' "$artifacts/load.log" | grep -v '^Creating' || true
[ "$load_status" = 0 ] || fail "the load client exited with $load_status (log: $artifacts/load.log)"
upstream_stats=$("${compose[@]}" exec -T upstream node -e \
  "fetch('http://127.0.0.1:8082/stats').then(r=>r.text()).then(t=>process.stdout.write(t))")
echo "  upstream: $upstream_stats"
admin_urls=$(grep -o '127\.0\.0\.1:[0-9]*:9464' "$src/infra/compose.yaml" | sed 's|^\(127\.0\.0\.1:[0-9]*\):9464|http://\1|')
# shellcheck disable=SC2086
node "$here/checks.mjs" fleet "$upstream_stats" $admin_urls || fail "the fleet did not share one limit"

# Images this run's tags replaced, so that the daemon's disk does not grow run after run.
docker image prune --force >/dev/null
