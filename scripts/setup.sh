#!/usr/bin/env sh
# One-time set-up on a fresh machine (Debian/Ubuntu, Node.js 20+ with npm):
# pnpm, the locked dependencies, and nats-server (the only service Frontier
# needs; `pnpm start` runs it as a child when none is answering). CI runs
# this too (.ci/run), so the README's set-up is what CI checks.
set -eu
cd "$(dirname "$0")/.."

PNPM_VERSION=10.34.8
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version)" != "$PNPM_VERSION" ]; then
  npm install -g "pnpm@$PNPM_VERSION"
fi

if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
  if [ "$(id -u)" = 0 ]; then as_root=""; else as_root="sudo"; fi
  if command -v apt-get >/dev/null 2>&1; then
    $as_root apt-get update -qq && $as_root apt-get install -y -qq nats-server
  else
    echo "setup: install nats-server (https://docs.nats.io/running-a-nats-service/introduction/installation), then run this again" >&2
    exit 1
  fi
fi

# Debian's chromium, for the web console's browser test (test/e2e/console-browser.test.ts,
# which skips without it): about 25 s and 113 MB of packages on a fresh Debian machine.
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then as_root=""; else as_root="sudo"; fi
  $as_root apt-get update -qq && $as_root apt-get install -y -qq chromium
fi

# Prometheus's promtool, for the metrics tests' `promtool check metrics` (they
# skip it without): only the one binary from Debian's prometheus package, not
# the server and its service (about 3 s, 19 MB downloaded, 30 MB installed).
if ! command -v promtool >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then as_root=""; else as_root="sudo"; fi
  promtool_tmp="$(mktemp -d)"
  chmod 755 "$promtool_tmp" # apt's download user writes there
  (cd "$promtool_tmp" && { apt-get download -qq prometheus || { $as_root apt-get update -qq && apt-get download -qq prometheus; }; }) &&
    dpkg-deb --fsys-tarfile "$promtool_tmp"/prometheus_*.deb | tar -x -C "$promtool_tmp" ./usr/bin/promtool &&
    $as_root install -m 0755 "$promtool_tmp/usr/bin/promtool" /usr/local/bin/promtool
  rm -rf "$promtool_tmp"
fi

pnpm install --frozen-lockfile
# The web console's front end, as static files the service serves (about 2 s).
pnpm --filter @frontier/console build:web
