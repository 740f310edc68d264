#!/usr/bin/env bash
# The whole test suite from a fresh clone: installs what is missing, then lint, typecheck, build and
# both vitest projects (unit, beside the code; e2e, in test/, holding the chaos, fuzz, load and docs
# suites). Used by the README's quick start and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=10.34.9
pnpm_cmd() {
  if command -v pnpm >/dev/null 2>&1 && [ "$(pnpm --version)" = "$PNPM_VERSION" ]; then pnpm "$@"
  else npx --yes "pnpm@$PNPM_VERSION" "$@"; fi
}

# System packages the suites start for real. Installed with apt-get when we are root.
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
# promtool checks the /metrics exposition (apps/proxy/src/admin/metrics/metrics.test.ts).
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "missing: ${missing[*]} — install them (e.g. sudo apt-get install ${missing[*]}) and run again" >&2
    exit 1
  fi
fi

pnpm_cmd install --frozen-lockfile
pnpm_cmd run lint
pnpm_cmd run build
pnpm_cmd run typecheck
mkdir -p test/.artifacts
status=0
failed=()
pnpm_cmd exec vitest run --reporter=default --reporter=json --outputFile.json=test/.artifacts/vitest.json || status=$?
node scripts/test-summary.mjs test/.artifacts/vitest.json || { status=1; failed+=(vitest); }
# Mutation score of the engine and the edge's security code (docs/testing.md): incremental against
# the committed result, so only mutants in changed code (or covered by changed tests) run again;
# fails when the score drops below thresholds.break in stryker.config.mjs. Report:
# test/.artifacts/mutation/index.html.
pnpm_cmd run mutation || { status=1; failed+=(mutation); }
# CPU per call against the bare node:http floor, as a ratio in one short run (test/bench/guard.ts):
# fails when the hot path got more than 30 % more expensive than the committed figure.
pnpm_cmd run bench:guard || { status=1; failed+=(bench:guard); }
# CI shows only the tail of a run: say again, last, what failed.
if [ ${#failed[@]} -gt 0 ]; then
  echo "test:all FAILED: ${failed[*]}"
  [[ " ${failed[*]} " == *" vitest "* ]] && node scripts/test-summary.mjs test/.artifacts/vitest.json || true
else
  echo "test:all passed"
fi
exit $status
