# Copyright (c) mmembed authors. All rights reserved.
"""Check that the environment can run mmembed; exit 1 with reasons if not.

Checks: versions of torch/mmengine/mmcv/mmdet, that mmcv's compiled ops
really load and run (NMS and RoIAlign on CPU and, where torch sees a GPU,
their CUDA kernels, compared with the CPU results), that ``import mmembed``
registers its components into mmdet's registry, and that safe checkpoint
loading is active.

Usage::

    python tools/misc/check_install.py
"""
import argparse
import sys
from typing import List, Optional


def check_cuda_ops() -> str:
    """Run mmcv's CUDA NMS and RoIAlign kernels; '' when there is no GPU."""
    import torch
    if not torch.cuda.is_available():
        return ''
    from mmcv.ops import RoIAlign, get_compiling_cuda_version, nms
    compiled = get_compiling_cuda_version()
    if compiled == 'not available':
        raise RuntimeError(
            'torch sees a GPU but mmcv was built without CUDA ops; rebuild '
            'it with FORCE_CUDA=1 (see docs/get_started.md, GPU machine)')
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.],
                          [20., 20., 30., 30.]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    _, keep_cpu = nms(boxes, scores, iou_threshold=0.5)
    _, keep_gpu = nms(boxes.cuda(), scores.cuda(), iou_threshold=0.5)
    assert keep_gpu.is_cuda and keep_gpu.cpu().tolist() == keep_cpu.tolist()
    feats = torch.randn(1, 3, 16, 16)
    rois = torch.tensor([[0., 1., 2., 9., 13.]])
    align = RoIAlign((4, 4), 1.0, 2, aligned=True)
    pooled_gpu = align(feats.cuda(), rois.cuda())
    torch.testing.assert_close(pooled_gpu.cpu(), align(feats, rois),
                               rtol=1e-4, atol=1e-5)
    return (f'; CUDA kernels of nms and roi_align run on '
            f'{torch.cuda.get_device_name(0)} (mmcv ops built with CUDA '
            f'{compiled})')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """No options besides ``--help``; parsed so that ``--help`` prints
    help instead of running the check."""
    # the first paragraph of the module docstring, as one line; not
    # mmembed.utils.cli_utils.doc_summary: mmembed may not import here
    description = ' '.join(__doc__.split('\n\n')[0].split())
    parser = argparse.ArgumentParser(
        description=description,
        epilog='Exit status: 0 when everything works, 1 with the reasons '
        'otherwise.')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    parse_args(argv)
    from mmembed.utils.env_check import find_dependency_problems
    problems = find_dependency_problems()
    if problems:
        print('environment problems:\n  - ' + '\n  - '.join(problems))
        return 1
    import torch
    from mmcv.ops import RoIAlign, nms
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.]])
    _, keep = nms(boxes, torch.tensor([0.9, 0.8]), iou_threshold=0.5)
    assert keep.tolist() == [0], keep
    feats = torch.arange(16.).view(1, 1, 4, 4)
    pooled = RoIAlign((2, 2), 1.0, 0, aligned=True)(
        feats, torch.tensor([[0., 0., 0., 4., 4.]]))
    assert pooled.shape == (1, 1, 2, 2)

    import mmcv
    import mmdet
    import mmengine

    import mmembed
    from mmdet.registry import MODELS
    for name in ('LovaszHingeLoss', 'SmoothEmbeddingLoss'):
        assert MODELS.get(name) is not None, f'{name} is not registered'
    from mmembed.utils.checkpoint import _INSTALLED
    assert _INSTALLED, 'safe checkpoint loading was not installed'
    cuda_note = check_cuda_ops()
    print(f'OK: torch {torch.__version__}, mmcv {mmcv.__version__} (compiled '
          f'ops load and run), mmengine {mmengine.__version__}, mmdet '
          f'{mmdet.__version__}, mmembed {mmembed.__version__}{cuda_note}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
