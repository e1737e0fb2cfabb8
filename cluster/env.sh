# Environment of every node of a gan-study Ray cluster (`ray up cluster/aws-gpu.yaml` or `cluster/onprem.yaml`).
# The cluster configs source it from ~/.bashrc, so `ray start`, `ray submit`, `ray exec`, `ray attach` and the
# processes Ray starts (trial workers, job drivers) all see it. It holds no secrets: those arrive as files that
# the cluster config's file_mounts copy from the machine that runs `ray up` (see cluster/README.md):
#   ~/.ray/auth_token          Ray's cluster token (`ray get-auth-token --generate` on that machine)
#   ~/.gan-study/secrets.env   MLFLOW_TRACKING_USERNAME=... and MLFLOW_TRACKING_PASSWORD=...

# the project's Python environment (created by setup_commands)
[ -f "$HOME/gan-study-venv/bin/activate" ] && . "$HOME/gan-study-venv/bin/activate"
# this node's copy of the project (file_mounts) first, also when the environment is shared (a linked venv)
case ":${PYTHONPATH:-}:" in *":$HOME/gan-study:"*) ;; *) export PYTHONPATH="$HOME/gan-study${PYTHONPATH:+:$PYTHONPATH}" ;; esac

# Ray token authentication: keep it on; the token file is ~/.ray/auth_token (or export RAY_AUTH_TOKEN)
export RAY_AUTH_MODE=token

# MLflow basic-auth credentials: read by the MLflow client on the driver and in every trial, and by
# cluster/start_mlflow.sh on the head node (they become the server's admin user)
if [ -f "$HOME/.gan-study/secrets.env" ]; then
    set -a
    . "$HOME/.gan-study/secrets.env"
    set +a
fi

# cluster facts written by setup_commands: GAN_STUDY_HEAD_IP and GAN_STUDY_STORAGE_PATH (shared storage)
# (exported: start_mlflow.sh, the study driver and the trials read them)
if [ -f "$HOME/.gan-study/cluster.env" ]; then
    set -a
    . "$HOME/.gan-study/cluster.env"
    set +a
fi

# studies track to the head node's MLflow server (study/tracking.resolve_uri honours MLFLOW_TRACKING_URI)
# and keep Ray results and checkpoints on storage every node reaches (study/launch.storage_root)
if [ -n "${GAN_STUDY_HEAD_IP:-}" ]; then
    export MLFLOW_TRACKING_URI="http://${GAN_STUDY_HEAD_IP}:${GAN_STUDY_MLFLOW_PORT:-5000}"
fi
export GAN_STUDY_STORAGE_PATH GAN_STUDY_DATA
