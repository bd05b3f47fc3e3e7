#!/bin/busybox sh
# Answers / with its version and host, and /healthz with "ok" (unless APP_BROKEN=1: then the
# health path answers 404, for trying a failed deploy).
/bin/busybox mkdir -p /tmp
# A command given to the container (app.release, app.command, docker run IMAGE CMD...) runs instead
# of the server: the usual entrypoint convention.
[ $# -gt 0 ] && exec "$@"
[ "${APP_BROKEN:-0}" = 1 ] && /bin/busybox rm -f /app/www/healthz
echo "hello $APP_VERSION: listening on :$PORT"
exec /bin/busybox httpd -f -v -p "$PORT" -h /app/www
