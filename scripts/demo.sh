#!/usr/bin/env bash
# The main job: start the server, fine-tune the bundled all-MiniLM-L6-v2 on the bundled
# BANKING77 sample through the REST API (progress bars, final metrics), save the model
# to ./trained_model, deploy it and print predictions for three sentences, then stop the server. Extra arguments go to `training_client run`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export TM_STORAGE_ROOT=${TM_STORAGE_ROOT:-$PWD/tm_storage}
URL=http://127.0.0.1:8000
LOG=$TM_STORAGE_ROOT/serve.log
mkdir -p "$TM_STORAGE_ROOT"
echo "starting the server (serve run serve_app:app), log in $LOG"
.venv/bin/serve run serve_app:app storage_root="$TM_STORAGE_ROOT" >"$LOG" 2>&1 &
SERVER=$!
# TERM, not INT: a script's background jobs ignore SIGINT, so `serve run` would never see it.
trap 'kill -TERM $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
.venv/bin/python -m training_client --url "$URL" wait --timeout 180 || { echo "server did not start; see $LOG"; exit 1; }
# Ends by serving the trained model (Ray Serve) and printing its predictions for three sample sentences.
.venv/bin/python -m training_client --url "$URL" run --force-restart --out trained_model \
    --predict "My new card still hasn't arrived, when will it come?" \
    --predict "I typed the wrong PIN three times and now it is blocked" \
    --predict "Why did my top-up fail?" "$@"
