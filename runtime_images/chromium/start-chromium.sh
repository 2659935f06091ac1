#!/bin/sh
# Start headless Chromium with its DevTools endpoint on $BCTRL_CDP_PORT.
# Chromium only binds loopback; for any other bind address socat relays the port to it.
set -eu
port="${BCTRL_CDP_PORT:-9222}"
bind="${BCTRL_CDP_BIND:-0.0.0.0}"
profile="${BCTRL_PROFILE_DIR:-/tmp/profile}"
mkdir -p "$profile" "${BCTRL_DOWNLOADS_DIR:-/downloads}"

chrome_port="$port"
if [ "$bind" != "127.0.0.1" ] && [ "$bind" != "localhost" ]; then
  chrome_port=$((port + 1))
  socat "TCP-LISTEN:${port},bind=${bind},fork,reuseaddr" "TCP:127.0.0.1:${chrome_port}" &
fi

# The server's egress proxy for every destination, loopback included (BCTRL_BROWSER_EGRESS).
set --
if [ -n "${BCTRL_PROXY_SERVER:-}" ]; then
  set -- "--proxy-server=${BCTRL_PROXY_SERVER}" "--proxy-bypass-list=<-loopback>"
fi

# The same quiet flags as the local driver (app/drivers/local.py): no background traffic.
# --no-sandbox: the container is the sandbox; Chromium's own needs user namespaces or a setuid
# helper, which cap_drop=ALL and no-new-privileges (rightly) take away.
exec chromium \
  --headless=new --no-sandbox \
  --remote-debugging-address=127.0.0.1 \
  --remote-debugging-port="$chrome_port" \
  --user-data-dir="$profile" \
  --disable-gpu --disable-dev-shm-usage --mute-audio --hide-scrollbars \
  --disable-background-networking --disable-component-update --disable-sync \
  --no-first-run --no-default-browser-check --disable-default-apps --disable-domain-reliability \
  --disable-client-side-phishing-detection --disable-breakpad --metrics-recording-only \
  --password-store=basic --use-mock-keychain \
  --component-updater=url-source=http://0.0.0.0:9/ --gaia-url=http://0.0.0.0:9/ \
  --google-apis-url=http://0.0.0.0:9/ --lso-url=http://0.0.0.0:9/ \
  --disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,NetworkTimeServiceQuerying,WebUIOmniboxPopup,WebUIOmniboxAimPopup,WebUIOmniboxFullPopup \
  "$@" \
  ${BCTRL_CHROMIUM_FLAGS:-} \
  about:blank
