#!/usr/bin/env bash
# Starts the action server, Rasa, the chat page and the clinic review app in the foreground;
# Ctrl-C stops them all. If the review app stops (a mistake in its settings, say), a warning
# with the end of its log is printed and the other three keep running.
# Called by `make run` after setup and training.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
MODEL=$("$VENV/bin/python" scripts/ensure_model.py --path)
RASA_PORT=5005
ACTIONS_PORT=5055  # the action_endpoint in endpoints.yml
WEB_PORT=${WEB_PORT:-8080}
# The clinic review app listens on this machine only unless REVIEW_HOST says otherwise
# (the clinic's internal interface, never the public one).
REVIEW_HOST=${REVIEW_HOST:-127.0.0.1}
REVIEW_PORT=${REVIEW_PORT:-8081}
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

pids=()        # the servers the assistant needs: if one exits, everything stops
review_pid=""  # the review app: if it exits, a warning, and the rest keeps running
stop() {
  trap - INT TERM EXIT
  echo; echo "==> Stopping..."
  for pid in "${pids[@]}" $review_pid; do kill "$pid" 2>/dev/null || true; done
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

# The review app runs under a small watcher, outside the `wait -n` below: a mistake in its
# settings (or a crash) must not take the patients' assistant down with it.
run_review() {
  "$VENV/bin/python" -m review --host "$REVIEW_HOST" --port "$REVIEW_PORT" >var/log/review.log 2>&1 &
  local child=$! status=0
  trap 'kill "$child" 2>/dev/null; wait "$child" 2>/dev/null; exit 0' TERM
  wait "$child" || status=$?
  {
    echo
    echo "WARNING: the clinic review app exited (status $status); Rasa, the action server and the"
    echo "         chat page keep running. The last lines of var/log/review.log:"
    tail -n 15 var/log/review.log | sed 's/^/    /'
    echo "         Fix it and start it alone with: $VENV/bin/python -m review --host $REVIEW_HOST --port $REVIEW_PORT"
  } >&2
}
echo "==> Serving the clinic review app on $REVIEW_HOST:$REVIEW_PORT (log: var/log/review.log)"
run_review &
review_pid=$!

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
    Review app: http://localhost:$REVIEW_PORT/  (clinic staff; sign-in required)
    Conversations are stored in var/conversations.db. Press Ctrl-C to stop.
MSG
review_users=$("$VENV/bin/python" -m review.manage list-users 2>/dev/null || true)
if ! grep -q " active$" <<<"$review_users"; then
  cat <<MSG
    No active review-app account yet. Create the first admin (in another terminal):
      .venv/bin/python -m review.manage create-user YOUR_NAME --role admin
MSG
else
  echo "    Review-app accounts: .venv/bin/python -m review.manage list-users | create-user NAME --role viewer"
fi
wait -n "${pids[@]}"
echo "ERROR: a server exited unexpectedly; see var/log/." >&2
exit 1
