#!/bin/busybox sh
# Answers / with its version and host, and /healthz with "ok" (unless APP_BROKEN=1: then the
# health path answers 404, for trying a failed deploy).
/bin/busybox mkdir -p /tmp
[ "${APP_BROKEN:-0}" = 1 ] && /bin/busybox rm -f /app/www/healthz
echo "hello $APP_VERSION: listening on :$PORT"
exec /bin/busybox httpd -f -v -p "$PORT" -h /app/www
