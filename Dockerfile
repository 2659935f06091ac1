# The API server image (compose's `api` service). Migrations run at start (`bctrl-server serve`).
FROM debian:bookworm-slim

ENV PATH=/opt/venv/bin:$PATH \
    BCTRL_HOST=0.0.0.0 \
    BCTRL_PORT=8787 \
    BCTRL_DATA_DIR=/data
EXPOSE 8787
VOLUME /data
HEALTHCHECK --interval=5s --timeout=3s --start-period=20s --retries=5 \
  CMD python3 -c "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('BCTRL_PORT', '8787'), timeout=2)"
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["bctrl-server", "serve"]
WORKDIR /opt/bctrl

# ffmpeg: run recordings become WebM videos (without it they stay a ZIP of frames).
# A PEM certificate to trust while downloading packages, for builds behind a TLS-intercepting proxy;
# used by this step only and not kept in the image's trust store.
ARG BUILD_CA_CERT=""
# Dependencies in their own layer, keyed on pyproject.toml: a code change does not download them again.
COPY pyproject.toml README.md ./
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv ca-certificates tini ffmpeg \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && cp /etc/ssl/certs/ca-certificates.crt /tmp/build-ca.pem \
 && if [ -n "$BUILD_CA_CERT" ]; then printf '%s\n' "$BUILD_CA_CERT" >> /tmp/build-ca.pem; fi \
 && export PIP_CERT=/tmp/build-ca.pem PIP_NO_CACHE_DIR=1 \
 && python3 -m venv /opt/venv \
 && pip install -q --upgrade pip "setuptools>=68" \
 && mkdir app && touch app/__init__.py \
 && pip install -q . \
 && pip uninstall -y -q bctrl-server && rm -rf app build *.egg-info /tmp/build-ca.pem

# The code (.dockerignore keeps tests, docs and the rest out). Editable, so the server finds
# migrations/ beside app/ as it does in a checkout.
COPY . .
RUN pip install --no-cache-dir -q --no-deps --no-build-isolation -e . && rm -rf build
