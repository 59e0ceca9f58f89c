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
#   FORCE_CUDA, TORCH_CUDA_ARCH_LIST, MAX_JOBS   passed to mmcv's build
#                (FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST=9.0 builds the CUDA ops for
#                an H100 even where no GPU is visible)
#
# torch >= 2.12 ships no THC/ headers; the mmcv 2.1.0 sources are then
# patched before the build (tools/misc/patch_mmcv_sources.py).
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
  # What mmcv's setup.py will compile: CUDA kernels when torch sees a GPU or
  # FORCE_CUDA=1 (then for TORCH_CUDA_ARCH_LIST, or the visible GPUs' archs).
  build_kind=$("$PY" -c '
import os
import torch
cuda = torch.cuda.is_available() or os.environ.get("FORCE_CUDA", "0") == "1"
archs = os.environ.get("TORCH_CUDA_ARCH_LIST") or "visible-gpus"
print("cuda%s-%s" % (torch.version.cuda, archs.replace(" ", "_").replace(";", "_")) if cuda else "cpu")
')
  say "mmcv ops will be built for: $build_kind (FORCE_CUDA=${FORCE_CUDA:-unset}, TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-unset})"
  # mmcv's extension is tied to the exact torch build, so built wheels are
  # cached per torch version and build kind; pip's own wheel cache cannot
  # tell them apart.
  wheel_dir="$MMCV_WHEEL_CACHE/torch-$TORCH_VERSION-py$("$PY" -c 'import sys; print("%d%d" % sys.version_info[:2])')"
  [ "$build_kind" = cpu ] || wheel_dir="$wheel_dir-$build_kind"
  mkdir -p "$wheel_dir"
  if ! ls "$wheel_dir"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; then
    mmcv_src="mmcv==$MMCV_VERSION"
    if ! "$PY" tools/misc/patch_mmcv_sources.py --torch-has-thc; then
      # torch >= 2.12 has no THC/ headers, which mmcv 2.1.0's CUDA sources
      # include: build from the unpacked sdist with the includes patched
      # (the patch is pinned to mmcv 2.1.0 and refuses anything else)
      say "torch $TORCH_VERSION has no THC/ headers: patching the mmcv $MMCV_VERSION sources"
      src_root=$(mktemp -d)
      "${PIP[@]}" download -q --no-deps --no-binary mmcv --no-build-isolation \
        -d "$src_root" "mmcv==$MMCV_VERSION"
      tar -xzf "$src_root"/mmcv-"$MMCV_VERSION".tar.gz -C "$src_root"
      "$PY" tools/misc/patch_mmcv_sources.py "$src_root/mmcv-$MMCV_VERSION"
      mmcv_src="$src_root/mmcv-$MMCV_VERSION"
    fi
    say "building mmcv $MMCV_VERSION with ops against torch $TORCH_VERSION for $build_kind (about 7-15 minutes on 2 cores)"
    MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
      "${PIP[@]}" wheel -q --no-build-isolation --no-deps --no-cache-dir \
      -w "$wheel_dir" "$mmcv_src"
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
