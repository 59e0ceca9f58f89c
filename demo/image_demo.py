# Copyright (c) mmembed authors. All rights reserved.
"""Run a detector on images with mmdet's ``DetInferencer``.

Usage (mmdet 3.x's ``demo/image_demo.py`` flags)::

    python demo/image_demo.py INPUTS MODEL [--weights CKPT]
        [--out-dir outputs] [--device cpu] [--pred-score-thr 0.3]
        [--batch-size 1] [--show] [--no-save-vis] [--no-save-pred]
        [--print-result] [--palette {coco,voc,citys,random,none}]

INPUTS is an image file or a directory of images. MODEL is a config file
(or a model name from mmdet's metafiles, or a ``.pth`` checkpoint that
stores its config). Drawn images go to ``OUT_DIR/vis/`` and predictions as
JSON to ``OUT_DIR/preds/``.

Without ``--weights`` the model is randomly initialised (useful to check a
config end to end, and said so on stdout: its detections are noise; mmembed
publishes no trained weights, see the README's model zoo); the class names
then come from the config's test dataset instead of mmdet's COCO fallback.
Checkpoints are loaded with mmembed's safe (``weights_only``) loader, and a
checkpoint of another model is refused unless ``--allow-partial-load``.
"""
import argparse
import os.path as osp
from typing import Any

# First: registers mmembed's components, installs safe checkpoint loading.
import mmembed  # noqa: F401  isort:skip
from mmdet.apis import DetInferencer

from mmembed.utils.cli_utils import (add_allow_partial_load_arg,
                                     apply_allow_partial_load, run_main)
from mmembed.utils.config_utils import (config_test_metainfo,
                                        missing_file_message)

NO_WEIGHTS_NOTE = (
    'image_demo.py: no --weights given, so the model runs with RANDOM '
    'weights: the boxes, masks, classes and scores it draws are noise, '
    'however confident they look. mmembed ships no trained COCO weights; '
    'train one (tools/train.py) or convert an official checkpoint '
    '(tools/model_converters/, README "Model zoo") and pass it with '
    '--weights.')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Detect objects in images with DetInferencer')
    parser.add_argument(
        'inputs', type=str, help='an image file or a directory of images')
    parser.add_argument(
        'model',
        type=str,
        help='config file, mmdet model name, or a checkpoint with its config')
    parser.add_argument('--weights', default=None, help='checkpoint file')
    parser.add_argument(
        '--out-dir',
        type=str,
        default='outputs',
        help='output directory (vis/ for images, preds/ for JSON)')
    parser.add_argument(
        '--device', default='cpu', help='device, e.g. cpu or cuda:0')
    parser.add_argument(
        '--pred-score-thr',
        type=float,
        default=0.3,
        help='draw only predictions scoring at least this')
    parser.add_argument(
        '--batch-size', type=int, default=1, help='inference batch size')
    parser.add_argument(
        '--show', action='store_true', help='display each image in a window')
    parser.add_argument(
        '--no-save-vis',
        action='store_true',
        help='do not save the drawn images')
    parser.add_argument(
        '--no-save-pred',
        action='store_true',
        help='do not save the predictions as JSON')
    parser.add_argument(
        '--print-result',
        action='store_true',
        help='print the predictions to the console')
    parser.add_argument(
        '--palette',
        default='none',
        choices=['coco', 'voc', 'citys', 'random', 'none'],
        help='colour palette (none: from the checkpoint or config)')
    add_allow_partial_load_arg(parser)
    args = parser.parse_args(argv)
    if not osp.exists(args.inputs) and '://' not in args.inputs:
        parser.error(f'inputs {args.inputs!r} does not exist')
    if args.batch_size < 1:
        parser.error(f'--batch-size must be >= 1, got {args.batch_size}')
    if args.weights is not None and not osp.isfile(args.weights) and \
            '://' not in args.weights:
        parser.error(missing_file_message(args.weights, '--weights'))
    # a path, not one of mmdet's model names: say it is missing, instead of
    # mmdet's "Cannot find model: ... in mmdet"
    if not osp.isfile(args.model) and (
            args.model.endswith(('.py', '.pth')) or '/' in args.model):
        what = 'checkpoint' if args.model.endswith('.pth') else 'config file'
        parser.error(missing_file_message(args.model, what))
    # a checkpoint passed as MODEL carries its config in meta['cfg']
    if args.model.endswith('.pth'):
        if args.weights is not None:
            parser.error('MODEL is a checkpoint; do not also give --weights')
        args.weights, args.model = args.model, None
    return args


def _use_config_classes(inferencer: DetInferencer) -> None:
    """Name classes after the config's test dataset (untrained model).

    DetInferencer falls back to the 80 COCO names when no checkpoint meta is
    available, which mislabels any other dataset.
    """
    metainfo = config_test_metainfo(inferencer.cfg)
    if 'classes' not in metainfo:
        return
    meta: Any = dict(inferencer.model.dataset_meta)
    meta['classes'] = metainfo['classes']
    if metainfo.get('palette') is not None and inferencer.palette == 'none':
        meta['palette'] = metainfo['palette']
    inferencer.model.dataset_meta = meta
    inferencer.visualizer.dataset_meta = meta


def main(argv=None) -> dict:
    args = parse_args(argv)
    apply_allow_partial_load(args)
    if args.weights is None:
        print(NO_WEIGHTS_NOTE, flush=True)
    inferencer = DetInferencer(
        model=args.model,
        weights=args.weights,
        device=args.device,
        palette=args.palette)
    if args.weights is None:
        _use_config_classes(inferencer)

    out_dir = args.out_dir
    if args.no_save_vis and args.no_save_pred:
        out_dir = ''  # nothing to write
    results = inferencer(
        inputs=args.inputs,
        batch_size=args.batch_size,
        show=args.show,
        pred_score_thr=args.pred_score_thr,
        no_save_vis=args.no_save_vis,
        no_save_pred=args.no_save_pred,
        print_result=args.print_result,
        out_dir=out_dir)
    if out_dir:
        saved = []
        if not args.no_save_vis:
            saved.append(f'drawn images in {osp.join(out_dir, "vis")}')
        if not args.no_save_pred:
            saved.append(f'predictions in {osp.join(out_dir, "preds")}')
        print('results saved: ' + '; '.join(saved))
    if args.weights is None:
        print('(random weights: these detections are noise, see above)')
    return results


if __name__ == '__main__':
    run_main(main, 'image_demo.py')
