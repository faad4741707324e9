#!/usr/bin/env bash
# `make run`: migrate, seed the demo data once, start the RQ worker, the scheduler of
# periodic jobs and the web app (gunicorn, two worker processes) on 127.0.0.1:$LMS_PORT.
# Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."

export LMS_ENV="${LMS_ENV:-development}"
PORT="${LMS_PORT:-5000}"
BIN=.venv/bin

# Redis: start a local one unless LMS_REDIS_URL points elsewhere. PostgreSQL likewise when
# LMS_DATABASE_URL names a local PostgreSQL; the default database is SQLite under instance/.
case "${LMS_REDIS_URL:-redis://127.0.0.1:6379/0}" in
  redis://127.0.0.1:6379*|redis://localhost:6379*) bash scripts/ensure-services.sh redis ;;
esac
case "${LMS_DATABASE_URL:-}" in
  postgresql*://*@127.0.0.1:5432/*|postgresql*://*@localhost:5432/*) bash scripts/ensure-services.sh postgresql ;;
esac

mkdir -p instance/logs
echo "==> migrating the database"
$BIN/flask --app wsgi db upgrade
echo "==> demo data"
$BIN/flask --app wsgi lms seed-demo --if-empty

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

$BIN/flask --app wsgi lms worker >>instance/logs/worker.log 2>&1 &
pids+=($!)
$BIN/flask --app wsgi lms scheduler >>instance/logs/scheduler.log 2>&1 &
pids+=($!)
echo "==> RQ worker and scheduler running (logs in instance/logs/)"

echo
echo "  LMS (${LMS_ENV}) at http://127.0.0.1:${PORT}/   API: http://127.0.0.1:${PORT}/api/v1/health"
echo "  Log in with a demo login above; the OTP secret goes into any TOTP authenticator app"
echo "  (or scan the QR code shown at first login). Ctrl-C stops everything."
echo
$BIN/gunicorn --bind "127.0.0.1:${PORT}" --workers 2 --worker-class gthread --threads 4 \
  --no-control-socket --access-logfile - --graceful-timeout 5 wsgi:app &
pids+=($!)
wait "${pids[-1]}"
