#!/usr/bin/env bash
# Create (or update) the project's virtual environment: torch, mmengine,
# mmcv 2.1.0 built from source with its compiled ops, mmdet 3.3.0, pycocotools
# and mmembed in editable mode. Called by `make install`; safe to re-run.
#
# Environment knobs:
#   PYTHON       interpreter to create the venv from       (default: python3)
#   VENV         venv directory                            (default: .venv)
#   TORCH_SPEC   what to install when no torch>=2.1 exists  (default: torch==2.13.0)
#   MMCV_VERSION mmcv release to build                     (default: 2.1.0)
#   MMCV_WHEEL_CACHE  where built mmcv wheels are kept, one folder per torch
#                build              (default: ~/.cache/mmembed/mmcv-wheels)
#
# torch: a torch >= 2.1 already importable by $PYTHON is respected (the venv
# is then created with --system-site-packages); otherwise $TORCH_SPEC is
# installed into the venv.
set -euo pipefail

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
MMCV_VERSION=${MMCV_VERSION:-2.1.0}
MMCV_WHEEL_CACHE=${MMCV_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmembed/mmcv-wheels}

say() { printf '[install] %s\n' "$*"; }
die() { printf '[install] ERROR: %s\n' "$*" >&2; exit 1; }

has_torch() {  # $1 = python; succeeds if it imports torch >= 2.1
  "$1" - <<'EOF' 2>/dev/null
import sys
import torch
major, minor = (int(x) for x in torch.__version__.split('+')[0].split('.')[:2])
sys.exit(0 if (major, minor) >= (2, 1) else 1)
EOF
}

if [ ! -x "$VENV/bin/python" ]; then
  venv_flags=()
  if has_torch "$PYTHON"; then
    say "using the torch that $PYTHON already has ($("$PYTHON" -c 'import torch; print(torch.__version__)'))"
    venv_flags+=(--system-site-packages)
  fi
  say "creating $VENV"
  "$PYTHON" -m venv "${venv_flags[@]}" "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)

say "build tools (setuptools with pkg_resources, needed by mmcv's setup.py)"
"${PIP[@]}" install -q "pip>=23" -r requirements/build.txt

if has_torch "$PY"; then
  say "torch $("$PY" -c 'import torch; print(torch.__version__)') present, keeping it"
else
  say "installing $TORCH_SPEC"
  "${PIP[@]}" install -q "$TORCH_SPEC"
fi
TORCH_VERSION=$("$PY" -c 'import torch; print(torch.__version__)')

say "pure-Python dependencies"
"${PIP[@]}" install -q -r requirements/runtime.txt -r requirements/tests.txt \
  "mmengine==0.10.7"

mmcv_ok() {
  "$PY" - <<EOF 2>/dev/null
from importlib.metadata import version
assert version('mmcv') == '$MMCV_VERSION'
from mmcv.utils import ext_loader
ext_loader.load_ext('_ext', ['nms', 'roi_align_forward'])
EOF
}

if mmcv_ok; then
  say "mmcv $MMCV_VERSION with compiled ops present"
else
  # mmcv's extension is tied to the exact torch build, so built wheels are
  # cached per torch version; pip's own wheel cache cannot tell them apart.
  wheel_dir="$MMCV_WHEEL_CACHE/torch-$TORCH_VERSION-py$("$PY" -c 'import sys; print("%d%d" % sys.version_info[:2])')"
  mkdir -p "$wheel_dir"
  if ! ls "$wheel_dir"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; then
    say "building mmcv $MMCV_VERSION with ops against torch $TORCH_VERSION (about 7-15 minutes on 2 cores)"
    MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
      "${PIP[@]}" wheel -q --no-build-isolation --no-deps --no-cache-dir \
      -w "$wheel_dir" "mmcv==$MMCV_VERSION"
  else
    say "reusing built wheel from $wheel_dir"
  fi
  "${PIP[@]}" install -q --no-deps --force-reinstall "$wheel_dir"/mmcv-"$MMCV_VERSION"-*.whl
  # mmcv's own pure-Python needs (addict, yapf, opencv, ...)
  "${PIP[@]}" install -q "mmcv==$MMCV_VERSION" --no-build-isolation
fi

say "mmdet 3.3.0 and mmembed (editable)"
"${PIP[@]}" install -q "mmdet==3.3.0"
"${PIP[@]}" install -q --no-build-isolation --no-deps -e .

say "checking the installation"
"$PY" tools/misc/check_install.py || die "installation check failed (see above)"
