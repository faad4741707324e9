#!/usr/bin/env bash
# Make sure the services the LMS needs are reachable; install and start them when not.
#   scripts/ensure-services.sh redis            (make run: Redis only)
#   scripts/ensure-services.sh redis postgresql (make test: both)
# Installs with apt-get when a service is missing (needs root, as on the project's machines).
set -euo pipefail

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    echo "==> apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  echo "==> apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

port_open() {  # host port
  python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.socket()
s.settimeout(1)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
except OSError:
    sys.exit(1)
PY
}

wait_port() {  # host port what
  for _ in $(seq 1 60); do
    port_open "$1" "$2" && return 0
    sleep 0.5
  done
  echo "error: $3 did not come up on $1:$2" >&2
  exit 1
}

ensure_redis() {
  if port_open 127.0.0.1 6379; then return 0; fi
  command -v redis-server >/dev/null || apt_install redis-server
  echo "==> starting Redis on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  wait_port 127.0.0.1 6379 Redis
}

ensure_postgresql() {
  if port_open 127.0.0.1 5432; then return 0; fi
  if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    apt_install postgresql
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  echo "==> starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_port 127.0.0.1 5432 PostgreSQL
}

ensure_chromium() {
  [ -x /usr/bin/chromium ] || apt_install chromium
}

for svc in "$@"; do
  case "$svc" in
    redis) ensure_redis ;;
    postgresql) ensure_postgresql ;;
    chromium) ensure_chromium ;;
    wrk) command -v wrk >/dev/null || apt_install wrk ;;
    ffmpeg) command -v ffprobe >/dev/null || apt_install ffmpeg ;;
    *) echo "unknown service $svc" >&2; exit 2 ;;
  esac
done
