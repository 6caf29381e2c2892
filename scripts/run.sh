#!/usr/bin/env bash
# Starts the action server, Rasa and the chat page in the foreground; Ctrl-C stops them all.
# Called by `make run` after setup and training.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
MODEL=$("$VENV/bin/python" scripts/ensure_model.py --path)
RASA_PORT=5005
ACTIONS_PORT=5055  # the action_endpoint in endpoints.yml
WEB_PORT=${WEB_PORT:-8080}
mkdir -p var/log
# Rasa's HTTP API (trackers, model) is on only with a token: RASA_API_TOKEN, or
# one generated once per checkout into var/api_token (git-ignored).
if [ -z "${RASA_API_TOKEN:-}" ]; then
  [ -s var/api_token ] || (umask 077; "$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(32))' > var/api_token)
  RASA_API_TOKEN=$(cat var/api_token)
fi
# Origins allowed to call Rasa from a browser (space-separated): Rasa's --cors for
# HTTP, and channels/socketio.py reads the same variable for socket.io connections.
export CORS_ORIGINS="${CORS_ORIGINS:-http://localhost:$WEB_PORT http://127.0.0.1:$WEB_PORT}"
read -r -a CORS <<< "$CORS_ORIGINS"

pids=()
stop() {
  trap - INT TERM EXIT
  echo; echo "==> Stopping..."
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "==> Stopped."
}
trap stop INT TERM EXIT

echo "==> Starting the action server on port $ACTIONS_PORT (log: var/log/actions.log)"
"$VENV/bin/rasa" run actions --actions actions --port "$ACTIONS_PORT" >var/log/actions.log 2>&1 &
pids+=($!)

echo "==> Starting Rasa on port $RASA_PORT with $MODEL (log: var/log/rasa.log)"
"$VENV/bin/rasa" run --model "$MODEL" --port "$RASA_PORT" \
  --enable-api --auth-token="$RASA_API_TOKEN" \
  --endpoints endpoints.yml --credentials credentials.yml --cors "${CORS[@]}" \
  >var/log/rasa.log 2>&1 &
pids+=($!)

echo "==> Serving the chat page on port $WEB_PORT (log: var/log/web.log)"
"$VENV/bin/python" -m web.serve --port "$WEB_PORT" >var/log/web.log 2>&1 &
pids+=($!)

printf "==> Waiting for Rasa to load the model"
for _ in $(seq 1 180); do
  if curl -fs "http://localhost:$RASA_PORT/" >/dev/null 2>&1; then break; fi
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo; echo "ERROR: a server exited; see var/log/"; tail -n 20 var/log/*.log; exit 1; }
  done
  printf "."; sleep 1
done
echo
cat <<MSG
==> Ready.
    REST:      curl -s localhost:$RASA_PORT/webhooks/rest/webhook -d '{"sender":"me","message":"what is a calcified disc?"}'
    Chat page: http://localhost:$WEB_PORT/  (the widget, on Rasa's socket.io channel)
    Conversations are stored in var/conversations.db. Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}"
echo "ERROR: a server exited unexpectedly; see var/log/." >&2
exit 1
