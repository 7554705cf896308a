#!/usr/bin/env bash
# `make serve` starts gunicorn with production settings and answers /healthz; then it stops.
# Run by .ci/run; usable by hand: scripts/serve_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
workdir=$(mktemp -d /tmp/debrief-serve.XXXXXX)
log="$workdir/serve.log"
env -u DJANGO_DEBUG DJANGO_SECRET_KEY="serve-check-$(date +%s)-not-a-real-secret-0123456789abcdef" \
  DJANGO_ALLOWED_HOSTS=127.0.0.1 DEBRIEF_BIND="127.0.0.1:$port" \
  DATABASE_URL="${SERVE_DATABASE_URL:-sqlite:///$workdir/serve.sqlite3}" DJANGO_SECURE_PROXY_SSL_HEADER=1 \
  setsid make serve >"$log" 2>&1 &
pid=$!
stop() { kill -TERM -- -"$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$workdir"; }
trap stop EXIT
for _ in $(seq 1 120); do
  status=$(curl -s -o "$workdir/body" -w '%{http_code}' "http://127.0.0.1:$port/healthz" || true)
  if [ "$status" = "200" ]; then
    echo "== make serve: /healthz 200 on 127.0.0.1:$port ($(cat "$workdir/body"))"
    login=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/accounts/login/" -H "X-Forwarded-Proto: https" || true)
    if [ "$login" != "200" ]; then echo "!! make serve: sign-in page answered $login" >&2; cat "$log" >&2; exit 1; fi
    echo "== make serve: sign-in page 200 behind a proxy (X-Forwarded-Proto: https)"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then break; fi
  sleep 0.5
done
echo "!! make serve did not answer /healthz with 200" >&2
cat "$log" >&2
exit 1
