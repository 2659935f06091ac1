#!/usr/bin/env bash
# Make sure a Chromium binary exists for the local driver; install Debian's package when we can.
# ffmpeg too (recordings become WebM with it; without it they stay a ZIP of frames).
set -euo pipefail
if ! command -v ffmpeg >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "ffmpeg is missing: installing Debian's ffmpeg package..." >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null
fi
if [ -n "${BCTRL_CHROMIUM_PATH:-}" ] && [ -x "$BCTRL_CHROMIUM_PATH" ]; then exit 0; fi
for name in chromium chromium-browser google-chrome google-chrome-stable; do
  if command -v "$name" >/dev/null 2>&1; then exit 0; fi
done
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Chromium is missing: installing Debian's chromium package..." >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-liberation >/dev/null
  exit 0
fi
cat >&2 <<'MSG'
Chromium is missing. Install it with:
    sudo apt-get install chromium
or point BCTRL_CHROMIUM_PATH at a Chromium or Chrome binary.
MSG
exit 1
