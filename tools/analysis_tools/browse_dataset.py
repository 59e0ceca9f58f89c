# Copyright (c) mmembed authors. All rights reserved.
"""Draw the ground truth of a config's training set, after its pipeline.

Usage::

    python tools/analysis_tools/browse_dataset.py CONFIG
        [--output-dir DIR] [--not-show] [--show-interval SECONDS]
        [--cfg-options KEY=VALUE ...]

Each sample of ``train_dataloader.dataset`` goes through the training
pipeline (so resizes, flips and crops are visible) and is drawn with the
config's ``visualizer`` (mmdet's ``DetLocalVisualizer`` in mmdet/mmembed
configs): boxes, and masks when the pipeline loads them. ``--not-show`` only
writes the images to ``--output-dir``.
"""
import argparse
import os
import os.path as osp

# First: registers mmembed's components into mmdet's registries.
import mmembed  # noqa: F401  isort:skip
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Draw the ground truth of the training set')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--output-dir',
        default=None,
        type=str,
        help='write the drawn images here (needed without a display)')
    parser.add_argument(
        '--not-show',
        default=False,
        action='store_true',
        help='do not open a window for each image')
    parser.add_argument(
        '--show-interval',
        type=float,
        default=2,
        help='seconds each image is shown')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, as key=value pairs merged into the '
        'config')
    args = parser.parse_args(argv)
    if not osp.isfile(args.config):
        from mmembed.utils.config_utils import missing_file_message
        parser.error(missing_file_message(args.config))
    if args.not_show and args.output_dir is None:
        parser.error('--not-show without --output-dir would draw nothing '
                     'anywhere; give --output-dir')
    return args


def _to_drawable(data_sample):
    """GT in the plain tensors/arrays the visualizer draws."""
    from mmdet.models.utils import mask2ndarray
    from mmdet.structures.bbox import BaseBoxes

    data_sample = data_sample.numpy()
    gt_instances = data_sample.gt_instances
    bboxes = gt_instances.get('bboxes', None)
    # box structures (HorizontalBoxes ...) -> their (N, 4) array
    if isinstance(bboxes, BaseBoxes):
        gt_instances.bboxes = bboxes.tensor
    masks = gt_instances.get('masks', None)
    if masks is not None:
        # BitmapMasks/PolygonMasks -> (N, H, W) bool
        gt_instances.masks = mask2ndarray(masks).astype(bool)
    data_sample.gt_instances = gt_instances
    return data_sample


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))

    from mmdet.registry import DATASETS, VISUALIZERS
    if 'visualizer' not in cfg:
        raise SystemExit('the config has no `visualizer`; add e.g. '
                         "visualizer=dict(type='DetLocalVisualizer', "
                         "vis_backends=[dict(type='LocalVisBackend')])")
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    visualizer = VISUALIZERS.build(cfg.visualizer)
    visualizer.dataset_meta = dataset.metainfo
    if args.output_dir is not None:
        os.makedirs(args.output_dir, exist_ok=True)

    progress = ProgressBar(len(dataset))
    for item in dataset:
        # packed inputs are (C, H, W) BGR uint8; the visualizer wants RGB HWC
        img = item['inputs'].permute(1, 2, 0).numpy()[..., ::-1]
        data_sample = _to_drawable(item['data_samples'])
        name = osp.basename(data_sample.img_path)
        out_file = None if args.output_dir is None else osp.join(
            args.output_dir, name)
        visualizer.add_datasample(
            name,
            img,
            data_sample,
            draw_pred=False,
            show=not args.not_show,
            wait_time=args.show_interval,
            out_file=out_file)
        progress.update()


if __name__ == '__main__':
    main()
