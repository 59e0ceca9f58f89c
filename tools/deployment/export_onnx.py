# Copyright (c) mmembed authors. All rights reserved.
"""Export an mmembed detector to ONNX.

Usage::

    python tools/deployment/export_onnx.py CONFIG CHECKPOINT --out model.onnx
        [--with-postprocess [--max-per-img K]] [--shape H W] [--batch-size B]
        [--opset 17] [--verify] [--cfg-options KEY=VALUE ...]

Without ``--with-postprocess`` the graph is ``forward(mode='tensor')``: the
raw outputs of the heads (for EmbedMask: per level ``cls_score_<l>``,
``bbox_pred_<l>``, ``centerness_<l>``, ``code_<l>``, and ``pixel_embeds``).
With it, the graph ends in ``boxes`` (B, K, 4), ``scores`` (B, K), ``labels``
(B, K, -1 = padding) and ``masks`` (B, K, H, W), with NMS inside.

The input ``inputs`` (B, 3, H, W) is the image *after* mmdet's
``DetDataPreprocessor`` (normalised, channel order converted, padded); the
values needed to reproduce that are written next to the model in
``<out>.json``, with the class names (the checkpoint's, else the config
test dataset's; never mmdet's 80-name COCO fallback for a model with
another number of classes). H and W default to the test pipeline's
``Resize`` scale rounded up to the padding divisor. CHECKPOINT may be
``none`` (random weights, for trying the export). ``--verify`` runs the
exported model with onnxruntime on the CPU and prints its largest
difference from PyTorch.

Models that can be exported: ``mmembed.deployment.EXPORTABLE_MODELS``.
See docs/deployment.md.
"""
import argparse
import json
import math
import os.path as osp
import sys
from typing import List, Optional, Tuple

import mmembed  # noqa: F401  isort:skip
import torch
from mmengine.config import Config, DictAction

from mmembed.deployment import build_export_module, export_onnx
from mmembed.utils.cli_utils import (add_allow_partial_load_arg,
                                     apply_allow_partial_load, run_main)
from mmembed.utils.config_utils import (config_test_metainfo,
                                        missing_file_message)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export an mmembed detector to ONNX')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        'checkpoint', help="checkpoint file, or 'none' for random weights")
    parser.add_argument('--out', required=True, help='output .onnx file')
    parser.add_argument(
        '--with-postprocess',
        action='store_true',
        help='end the graph in boxes, scores, labels and masks of a fixed '
        'number of detections (NMS inside the graph)')
    parser.add_argument(
        '--max-per-img',
        type=int,
        default=None,
        help='detections per image of --with-postprocess (default: '
        'test_cfg.max_per_img)')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='input height and width (multiples of the padding divisor)')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--opset', type=int, default=17, help='ONNX opset')
    parser.add_argument(
        '--verify',
        action='store_true',
        help='compare onnxruntime (CPU) with PyTorch on a random input')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, e.g. model.test_cfg.score_thr=0.1')
    add_allow_partial_load_arg(parser)
    args = parser.parse_args(argv)
    if not osp.isfile(args.config):
        parser.error(missing_file_message(args.config))
    return args


def model_num_classes(model: torch.nn.Module) -> Optional[int]:
    """``num_classes`` of the first head that has one (``bbox_head``, or
    the stage heads of a query-based ``roi_head``), None if none has."""
    for _, module in model.named_modules():
        num_classes = getattr(module, 'num_classes', None)
        if isinstance(num_classes, int):
            return num_classes
    return None


def class_names(model: torch.nn.Module, cfg: Config,
                checkpoint_meta: dict) -> List[str]:
    """The class names for the sidecar JSON, one per class the model
    predicts.

    mmdet's ``init_detector`` falls back to the 80 COCO names when the
    checkpoint stores none (or there is no checkpoint); then the config's
    test dataset names the classes. A count that still differs from the
    model's ``num_classes`` gets placeholder names and a warning.
    """
    classes = list(model.dataset_meta.get('classes', ()))
    num_classes = model_num_classes(model)
    if 'dataset_meta' not in checkpoint_meta and \
            'CLASSES' not in checkpoint_meta:
        classes = list(config_test_metainfo(cfg).get('classes', ()))
    if num_classes is not None and len(classes) != num_classes:
        print(f'export_onnx.py: warning: the model predicts {num_classes} '
              f'classes but {len(classes)} class names were found (in the '
              'checkpoint meta or the config test dataset); writing '
              'class_0 ... to the JSON')
        classes = [f'class_{i}' for i in range(num_classes)]
    return classes


def default_shape(cfg: Config, divisor: int) -> Tuple[int, int]:
    """(H, W): the test pipeline's Resize scale, padded up to ``divisor``.

    Raises:
        ValueError: when the test pipeline has no ``Resize`` with a
            ``scale`` (pass ``--shape``).
    """
    pipeline = cfg.get('test_dataloader', {}).get('dataset',
                                                  {}).get('pipeline', [])
    for step in pipeline:
        step_type = step.get('type')
        name = step_type if isinstance(step_type, str) else getattr(
            step_type, '__name__', '')
        if name.split('.')[-1] == 'Resize' and step.get('scale'):
            width, height = step['scale']  # mmcv scales are (w, h)
            return (math.ceil(height / divisor) * divisor,
                    math.ceil(width / divisor) * divisor)
    raise ValueError('the test pipeline has no Resize with a scale; pass '
                     '--shape H W')


def preprocess_meta(model: torch.nn.Module) -> dict:
    """What the caller must do to an image before feeding ``inputs``."""
    pre = model.data_preprocessor
    return dict(
        mean=pre.mean.flatten().tolist() if pre._enable_normalize else None,
        std=pre.std.flatten().tolist() if pre._enable_normalize else None,
        bgr_to_rgb=bool(pre._channel_conversion),
        pad_size_divisor=int(pre.pad_size_divisor),
        pad_value=float(pre.pad_value))


def verify(module: torch.nn.Module, onnx_file: str,
           shape: Tuple[int, ...]) -> float:
    """Largest absolute difference between onnxruntime and PyTorch (float
    outputs) or the fraction of differing elements (bool / int outputs) on
    a random input."""
    import numpy as np
    import onnxruntime as ort
    torch.manual_seed(0)
    inputs = torch.randn(shape)
    with torch.no_grad():
        expected = module(inputs)
    session = ort.InferenceSession(
        onnx_file, providers=['CPUExecutionProvider'])
    got = session.run(None, {'inputs': inputs.numpy()})
    worst = 0.
    for want, have in zip(expected, got):
        want = want.numpy()
        if want.dtype.kind == 'f':
            worst = max(worst, float(np.abs(want - have).max(initial=0)))
        else:
            worst = max(worst, float((want != have).mean()))
    return worst


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    apply_allow_partial_load(args)
    from mmdet.apis import init_detector

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    checkpoint = None if args.checkpoint.lower() == 'none' else \
        args.checkpoint
    if checkpoint is not None and not osp.isfile(checkpoint):
        sys.exit('export_onnx.py: ' +
                 missing_file_message(checkpoint, 'checkpoint'))
    model = init_detector(cfg, checkpoint, device='cpu')
    checkpoint_meta = {}
    if checkpoint is not None:
        from mmembed.utils.checkpoint import safe_torch_load
        checkpoint_meta = safe_torch_load(
            checkpoint, map_location='cpu').get('meta', {}) or {}
    divisor = int(model.data_preprocessor.pad_size_divisor or 1)
    height, width = args.shape or default_shape(cfg, divisor)
    shape = (args.batch_size, 3, height, width)
    names = export_onnx(
        model,
        args.out,
        shape,
        with_postprocess=args.with_postprocess,
        max_per_img=args.max_per_img,
        opset_version=args.opset)
    meta = dict(
        config=osp.abspath(args.config),
        checkpoint=checkpoint,
        detector=type(model).__name__,
        input_name='inputs',
        input_shape=list(shape),
        output_names=names,
        with_postprocess=args.with_postprocess,
        preprocess=preprocess_meta(model),
        classes=class_names(model, cfg, checkpoint_meta),
        opset=args.opset)
    with open(args.out + '.json', 'w') as f:
        json.dump(meta, f, indent=2)
    print(f'wrote {args.out} ({len(names)} outputs: {", ".join(names)}) '
          f'and {args.out}.json')
    if args.verify:
        module = build_export_module(model, args.with_postprocess,
                                     args.max_per_img)
        worst = verify(module, args.out, shape)
        print(f'onnxruntime vs PyTorch: largest difference {worst:.3g}')


if __name__ == '__main__':
    run_main(main, 'export_onnx.py')
