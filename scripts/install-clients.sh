#!/usr/bin/env bash
# Install the pinned real clients (Claude Code, Codex CLI) for the end-to-end tests.
#
# Idempotent: when both pinned versions are already in .cache/clients nothing is fetched.
# Prints the two binary paths (claude first, codex second) on stdout, one per line.
#
# OXTAIL_CLIENTS_DIR overrides the install dir (default: <repo>/.cache/clients).
#
# Exit codes (tests/e2e/conftest.py reads them):
#   0  installed (or already present)
#   3  the npm registry cannot be reached: the e2e tests skip loudly
#   1  anything else went wrong: a real failure
#
# The clients are only installed here, never run: running them is allowed only inside a
# loopback-only network namespace (scripts/netns-run).
set -euo pipefail

readonly CLAUDE_PKG="@anthropic-ai/claude-code"
readonly CLAUDE_VERSION="2.1.330"
readonly CODEX_PKG="@openai/codex"
readonly CODEX_VERSION="0.169.0"
readonly EXIT_REGISTRY_UNREACHABLE=3

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix="${OXTAIL_CLIENTS_DIR:-$repo/.cache/clients}"
claude_bin="$prefix/node_modules/.bin/claude"
codex_bin="$prefix/node_modules/.bin/codex"

# The version a package.json under node_modules declares, or nothing.
installed_version() {
    local manifest="$prefix/node_modules/$1/package.json"
    [ -f "$manifest" ] || return 0
    node -e 'process.stdout.write(require(process.argv[1]).version)' "$manifest"
}

if [ "$(installed_version "$CLAUDE_PKG")" = "$CLAUDE_VERSION" ] &&
    [ "$(installed_version "$CODEX_PKG")" = "$CODEX_VERSION" ] &&
    [ -x "$claude_bin" ] && [ -x "$codex_bin" ]; then
    printf '%s\n%s\n' "$claude_bin" "$codex_bin"
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    echo "install-clients: npm is not installed (apt-get install npm)" >&2
    exit 1
fi

mkdir -p "$prefix"
# A package.json of our own keeps npm from walking up into the repo; npm records the pins in it.
[ -f "$prefix/package.json" ] || printf '{"name":"oxtail-e2e-clients","private":true}\n' >"$prefix/package.json"

# Bounded retries and timeouts: npm's defaults back off for minutes when the network is down.
# Installing straight away (rather than probing first) lets a warm npm cache install offline.
if ! log=$(npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error \
    --fetch-retries=1 --fetch-retry-mintimeout=2000 --fetch-retry-maxtimeout=5000 \
    --fetch-timeout=30000 \
    "$CLAUDE_PKG@$CLAUDE_VERSION" "$CODEX_PKG@$CODEX_VERSION" 2>&1); then
    # Tell "the registry is unreachable" (skip) apart from every other failure (fail).
    case "$log" in
    *ENOTFOUND* | *EAI_AGAIN* | *ECONNREFUSED* | *ECONNRESET* | *ETIMEDOUT* | *ENETUNREACH* | *EHOSTUNREACH* | *ERR_SOCKET_TIMEOUT*)
        echo "install-clients: the npm registry cannot be reached; the e2e tests will be skipped" >&2
        printf '%s\n' "$log" | grep -v '^npm warn' | tail -n 5 >&2
        exit "$EXIT_REGISTRY_UNREACHABLE"
        ;;
    esac
    echo "install-clients: npm install failed:" >&2
    printf '%s\n' "$log" >&2
    exit 1
fi

for bin in "$claude_bin" "$codex_bin"; do
    if [ ! -x "$bin" ]; then
        echo "install-clients: npm finished but $bin is missing" >&2
        exit 1
    fi
done
printf '%s\n%s\n' "$claude_bin" "$codex_bin"
