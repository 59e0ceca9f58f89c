# Copyright (c) mmembed authors. All rights reserved.
"""Check that the environment can run mmembed; exit 1 with reasons if not.

Checks: versions of torch/mmengine/mmcv/mmdet, that mmcv's compiled ops
really load and run (NMS and RoIAlign on CPU), that ``import mmembed``
registers its components into mmdet's registry, and that safe checkpoint
loading is active.
"""
import sys


def main() -> int:
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
    print(f'OK: torch {torch.__version__}, mmcv {mmcv.__version__} (compiled '
          f'ops load and run), mmengine {mmengine.__version__}, mmdet '
          f'{mmdet.__version__}, mmembed {mmembed.__version__}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
