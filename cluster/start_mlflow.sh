#!/usr/bin/env bash
# (Re)start the MLflow tracking server of a gan-study cluster on the head node, with MLflow's basic-auth app.
#
#   bash cluster/start_mlflow.sh        (the cluster configs run it from head_start_ray_commands)
#
# Reads from the environment (cluster/env.sh): MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD (the server's
# admin user, created on the first start; later starts keep the stored user), GAN_STUDY_HEAD_IP (the private
# address it listens on), GAN_STUDY_MLFLOW_PORT (5000), GAN_STUDY_MLFLOW_ROOT (~/mlflow: SQLite stores, log,
# pid file, the server's Flask secret) and GAN_STUDY_MLFLOW_ARTIFACTS (where artifacts go, e.g. s3://bucket/mlflow; default under the root).
# Nothing secret is written to disk or put on a command line.
set -euo pipefail

: "${MLFLOW_TRACKING_USERNAME:?not set: put it in ~/.gan-study/secrets.env (see cluster/README.md)}"
: "${MLFLOW_TRACKING_PASSWORD:?not set: put it in ~/.gan-study/secrets.env (see cluster/README.md)}"
host="${GAN_STUDY_HEAD_IP:?not set: the head node private IP (written to ~/.gan-study/cluster.env by setup)}"
port="${GAN_STUDY_MLFLOW_PORT:-5000}"
root="${GAN_STUDY_MLFLOW_ROOT:-$HOME/mlflow}"
artifacts="${GAN_STUDY_MLFLOW_ARTIFACTS:-$root/artifacts}"
# everything the server writes (runs, password hashes, artifacts, log) is private to its user; stores made by
# an earlier start with a looser umask are narrowed too
umask 077
mkdir -p "$root"
chmod -R go-rwx "$root"

if [ -f "$root/server.pid" ] && kill -0 "$(cat "$root/server.pid")" 2>/dev/null; then
    kill -- "-$(cat "$root/server.pid")" 2>/dev/null || kill "$(cat "$root/server.pid")"
    sleep 3
fi

# the Flask secret for CSRF protection: made on this node once, kept beside the stores (owner-only)
if [ ! -s "$root/flask_secret" ]; then
    (umask 077 && python -c "import secrets; print(secrets.token_hex(32))" > "$root/flask_secret")
fi

# --allowed-hosts: the Host headers the server answers (MLflow refuses others against DNS rebinding): its own
# address, which MLflow's default list holds only when it is a private one (a head with a public address was
# refused), and localhost for the SSH tunnel of cluster/README.md
# basic-auth settings without credentials (those come from MLFLOW_AUTH_ADMIN_* below)
cat > "$root/basic_auth.ini" <<EOF
[mlflow]
default_permission = NO_PERMISSIONS
database_uri = sqlite:///$root/basic_auth.db
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
EOF

MLFLOW_FLASK_SERVER_SECRET_KEY="$(cat "$root/flask_secret")" \
MLFLOW_AUTH_CONFIG_PATH="$root/basic_auth.ini" \
MLFLOW_AUTH_ADMIN_USERNAME="$MLFLOW_TRACKING_USERNAME" \
MLFLOW_AUTH_ADMIN_PASSWORD="$MLFLOW_TRACKING_PASSWORD" \
    setsid nohup mlflow server --app-name basic-auth --host "$host" --port "$port" \
        --allowed-hosts "$host,$host:$port,localhost,localhost:*,127.0.0.1,127.0.0.1:*" \
        --backend-store-uri "sqlite:///$root/mlflow.db" --artifacts-destination "$artifacts" \
        > "$root/server.log" 2>&1 < /dev/null &
echo $! > "$root/server.pid"  # setsid: the server leads its own process group (stop_mlflow.sh ends the group)

# the non-admin user the trials log as (GAN_STUDY_TRIAL_USERNAME / _PASSWORD, optional): the driver grants it
# EDIT on each study's experiment (study/tracking.py, trial_credentials); the admin account stays on the head
create_trial_user() {
    [ -n "${GAN_STUDY_TRIAL_USERNAME:-}" ] || return 0
    : "${GAN_STUDY_TRIAL_PASSWORD:?not set: the password of the trial user (12 characters or more)}"
    python - "http://$host:$port" <<'EOF'
import os, sys
from mlflow.exceptions import RestException
from mlflow.server import get_app_client
try:
    get_app_client("basic-auth", tracking_uri=sys.argv[1]).create_user(
        os.environ["GAN_STUDY_TRIAL_USERNAME"], os.environ["GAN_STUDY_TRIAL_PASSWORD"])
    print(f"trial user {os.environ['GAN_STUDY_TRIAL_USERNAME']!r} created (no permissions until a study grants them)")
except RestException as err:
    if err.error_code != "RESOURCE_ALREADY_EXISTS":  # kept from an earlier start
        raise
EOF
}

for _ in $(seq 60); do
    kill -0 "$(cat "$root/server.pid")" 2>/dev/null || break
    if python - "$host" "$port" <<'EOF' 2>/dev/null; then
import sys, urllib.request
urllib.request.urlopen(f"http://{sys.argv[1]}:{sys.argv[2]}/health", timeout=2)
EOF
        echo "MLflow tracking server with basic auth at http://$host:$port (log: $root/server.log)"
        create_trial_user
        exit 0
    fi
    sleep 2
done
echo "MLflow server is not answering on http://$host:$port; last lines of $root/server.log:" >&2
tail -n 20 "$root/server.log" >&2
exit 1
