#!/usr/bin/env bash
# The dashboard's browser tests drive a real Chromium: Debian's package, never a test tool's download.
# Idempotent: nothing happens where a Chromium is already installed. Without root (or sudo) and apt, it says
# how to install one and exits 0: the browser tests then skip, unless ELM_REQUIRE_BROWSER=1 (as in CI).
set -euo pipefail

if command -v chromium >/dev/null || command -v chromium-browser >/dev/null || [ -n "${ELM_CHROMIUM:-}" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "install-browser: no apt-get here; install Chromium and set ELM_CHROMIUM to its path for the browser tests" >&2
  exit 0
fi
if [ "$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo"; else
  echo "install-browser: not root; run 'sudo apt-get install chromium' for the dashboard's browser tests" >&2
  exit 0
fi
echo "install-browser: installing Debian's chromium (once)" >&2
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
