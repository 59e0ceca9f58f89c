#!/usr/bin/env bash
# Distributed testing with torchrun (torch.distributed.run).
#
#   tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]
#
# GPUS is the number of processes on this node (one per GPU; on a machine
# without CUDA, tools/test.py runs them on the CPU with the gloo backend).
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
set -eo pipefail

if [ "$#" -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT GPUS [test.py args...]" >&2
    exit 2
fi

CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}

TOOLS_DIR=$(dirname "$0")
# the repository's virtual environment when there is one
PYTHON=python
if [ -x "$TOOLS_DIR/../.venv/bin/python" ]; then
    PYTHON="$TOOLS_DIR/../.venv/bin/python"
fi

PYTHONPATH="$TOOLS_DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$TOOLS_DIR/test.py" \
    "$CONFIG" \
    "$CHECKPOINT" \
    --launcher pytorch "${@:4}"
