#!/bin/sh
# As the official image's entrypoint: `redis-server` started without a config file accepts clients
# from other hosts (protected mode off), since the container network is what keeps others out.
set -e
if [ "$1" = redis-server ] && [ "${2#*.conf}" = "${2:-}" ]; then
  shift
  set -- redis-server --protected-mode no "$@"
fi
exec "$@"
