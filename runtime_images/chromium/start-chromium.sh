#!/bin/sh
# Start Chromium with its DevTools endpoint on $BCTRL_CDP_PORT: headless, or headful on a virtual
# display of its own when BCTRL_HEADLESS=0. Chromium only binds loopback; for any other bind address
# socat relays the port to it.
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

# A headed Chrome's user agent for this Chromium's version, never "HeadlessChrome" (app/drivers/chromium.py).
agent="${BCTRL_USER_AGENT:-}"
if [ -z "$agent" ]; then
  major=$(chromium --version 2>/dev/null | sed -n 's/^[^0-9]*\([0-9][0-9]*\)\..*/\1/p' | head -n 1)
  if [ -n "$major" ]; then
    agent="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${major}.0.0.0 Safari/537.36"
  fi
fi
if [ -n "$agent" ]; then
  set -- "$@" "--user-agent=${agent}"
fi

if [ "${BCTRL_HEADLESS:-1}" = "0" ]; then
  # Headful: Xvfb picks a free display (-displayfd) and listens only on this container's own socket
  # directory (no TCP, no abstract socket another container on the host network could reach).
  # --test-type: headful Chromium ignores --disable-infobars; without it the first tab alone shows an
  # "unsupported command-line flag" bar that takes 56 px of its viewport.
  Xvfb -displayfd 3 -screen 0 "${BCTRL_SCREEN:-1920x1080}x24" -nolisten tcp -nolisten local -noreset \
    3>/tmp/.display >/tmp/xvfb.log 2>&1 &
  tries=0
  while [ ! -s /tmp/.display ]; do
    tries=$((tries + 1))
    if [ "$tries" -gt 100 ]; then echo "Xvfb did not start: $(cat /tmp/xvfb.log)" >&2; exit 1; fi
    sleep 0.1
  done
  DISPLAY=":$(cat /tmp/.display)"
  export DISPLAY
  set -- "$@" --test-type
else
  set -- "$@" --headless=new
fi

# The same switches as the local driver (app/drivers/chromium.py behaviour_flags, checked by
# tests/security/test_policy_units.py). Chromium honours only the last --disable-features and
# --enable-features: BCTRL_CHROMIUM_FLAGS must not carry either.
# --no-sandbox: the container is the sandbox; Chromium's own needs user namespaces or a setuid
# helper, which cap_drop=ALL and no-new-privileges (rightly) take away.
exec chromium \
  --no-sandbox \
  --remote-debugging-address=127.0.0.1 \
  --remote-debugging-port="$chrome_port" \
  --user-data-dir="$profile" \
  --disable-background-networking --disable-component-update --disable-sync \
  --no-first-run --no-default-browser-check --disable-default-apps --disable-domain-reliability \
  --disable-client-side-phishing-detection --disable-breakpad --metrics-recording-only \
  --password-store=basic --use-mock-keychain --no-service-autorun --disable-search-engine-choice-screen \
  --disable-field-trial-config --disable-component-extensions-with-background-pages \
  --component-updater=url-source=http://0.0.0.0:9/ --gaia-url=http://0.0.0.0:9/ \
  --google-apis-url=http://0.0.0.0:9/ --lso-url=http://0.0.0.0:9/ \
  --autofill-server-url=http://0.0.0.0:9/ \
  --disable-back-forward-cache --disable-background-timer-throttling --disable-backgrounding-occluded-windows \
  --disable-renderer-backgrounding --disable-ipc-flooding-protection --disable-hang-monitor \
  --disable-prompt-on-repost --allow-pre-commit-input --force-color-profile=srgb --disable-infobars \
  --disable-gpu --disable-dev-shm-usage --mute-audio --hide-scrollbars \
  --disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,NetworkTimeServiceQuerying,AimEnabled,PreconnectToSearch,WebUIOmniboxPopup,WebUIOmniboxAimPopup,WebUIOmniboxFullPopup,LensOverlay,AvoidUnnecessaryBeforeUnloadCheckSync,PaintHolding,HttpsUpgrades,HttpsFirstBalancedModeAutoEnable,ThirdPartyStoragePartitioning,AvoidCorsURLLoaderRestartOnRedirect,BackForwardCache,AutofillServerCommunication,PasswordLeakDetection \
  --enable-features=SkipListAccountsWithoutGaiaCookies,WebMCPTesting,DevToolsWebMCPSupport \
  "$@" \
  ${BCTRL_CHROMIUM_FLAGS:-} \
  about:blank
