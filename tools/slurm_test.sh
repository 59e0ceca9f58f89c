#!/usr/bin/env bash
# Testing on a SLURM cluster: one srun task per GPU.
#
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS="..."] \
#   tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]
set -eo pipefail
set -x

if [ "$#" -lt 4 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]" >&2
    exit 2
fi

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
# extra srun options, split on spaces on purpose (e.g. "--quotatype=auto")
read -r -a EXTRA_SRUN_ARGS <<< "${SRUN_ARGS:-}"

TOOLS_DIR=$(dirname "$0")
PYTHON=python
if [ -x "$TOOLS_DIR/../.venv/bin/python" ]; then
    PYTHON="$TOOLS_DIR/../.venv/bin/python"
fi

PYTHONPATH="$TOOLS_DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    ${EXTRA_SRUN_ARGS[@]+"${EXTRA_SRUN_ARGS[@]}"} \
    "$PYTHON" -u "$TOOLS_DIR/test.py" "$CONFIG" "$CHECKPOINT" \
    --launcher="slurm" "${@:5}"
