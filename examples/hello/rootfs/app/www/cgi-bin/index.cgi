#!/bin/busybox sh
# GET /: the release's version and the node that answered.
printf 'Content-Type: text/plain\r\n\r\n'
printf 'hello %s from %s\n' "$APP_VERSION" "${INFRA_NODE:-$(/bin/busybox hostname)}"
