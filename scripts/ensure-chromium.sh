#!/usr/bin/env bash
# Make sure a Chromium binary exists for the local driver; install Debian's package when we can.
# Xvfb and ffmpeg too (recordings become WebM with it; without it they stay a ZIP of frames).
set -euo pipefail
if ! command -v ffmpeg >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "==> ffmpeg is missing: installing Debian's ffmpeg package (about 100 MB with what it needs, a minute or two)" >&2
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ffmpeg
fi
# Xvfb: the virtual display of headful browsers (`headless: false`, app/drivers/display.py).
if ! command -v Xvfb >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "==> Xvfb is missing: installing Debian's xvfb package (about 10 MB, seconds)" >&2
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q xvfb
fi
if [ -n "${BCTRL_CHROMIUM_PATH:-}" ] && [ -x "$BCTRL_CHROMIUM_PATH" ]; then exit 0; fi
for name in chromium chromium-browser google-chrome google-chrome-stable; do
  if command -v "$name" >/dev/null 2>&1; then exit 0; fi
done
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "==> Chromium is missing: installing Debian's chromium package (about 300 MB with what it needs, a minute or two)" >&2
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-liberation
  exit 0
fi
cat >&2 <<'MSG'
Chromium is missing. Install it with:
    sudo apt-get install chromium
or point BCTRL_CHROMIUM_PATH at a Chromium or Chrome binary.
MSG
exit 1
