#!/usr/bin/env bash
# Stop the MLflow tracking server that cluster/start_mlflow.sh started on this (head) node: its whole process
# group (the server and its uvicorn workers). `ray down` only runs `ray stop`, which leaves the server running, so
# cluster/README.md runs this first:
#
#   ray exec cluster/onprem.yaml 'bash ~/gan-study/cluster/stop_mlflow.sh' && ray down -y cluster/onprem.yaml
set -euo pipefail
root="${GAN_STUDY_MLFLOW_ROOT:-$HOME/mlflow}"
[ -f "$root/server.pid" ] || { echo "no MLflow server recorded in $root/server.pid"; exit 0; }
pid="$(cat "$root/server.pid")"
kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || { echo "MLflow server $pid is not running"; rm -f "$root/server.pid"; exit 0; }
for _ in $(seq 30); do
    kill -0 -- "-$pid" 2>/dev/null || { rm -f "$root/server.pid"; echo "MLflow server stopped"; exit 0; }
    sleep 1
done
kill -9 -- "-$pid" 2>/dev/null || true
rm -f "$root/server.pid"
echo "MLflow server killed"
