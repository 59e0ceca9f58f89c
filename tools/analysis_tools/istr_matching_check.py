# Copyright (c) mmembed authors. All rights reserved.
"""Two measurements behind ISTR's gap to QueryInst on small data
(docs/istr.md#why-istr-trails-queryinst-here):

1. **Query start**: ISTR's query features are a learned embedding per query
   plus the image's pooled P2-P5 features, the same vector for every query
   of an image. Reported per image: the norm of that shared part against
   the spread of the embeddings (mean distance of a query's embedding from
   their mean), and the mean pairwise cosine similarity of the resulting
   query features (1.0: all queries start identical).
2. **Matching churn**: ``MaskCodeCost`` compares predicted codes with GT
   masks encoded with ISTR's *random* soft targets, drawn afresh at every
   call. For every stage of one training forward, the Hungarian assignment
   is recomputed with a second random encoding of the same GT masks (same
   predictions); reported: the fraction of GT instances whose matched query
   changes. 0 would mean the noise never changes the match.

    python tools/analysis_tools/istr_matching_check.py \\
        configs/istr/istr_r18_fpn_fruits_nuts.py work_dirs/.../epoch_80.pth \\
        --out benchmarks/results/istr_matching_fruits_nuts.json

Runs on the config's training images (its train pipeline, one pass, no
weight update); ``--checkpoint none`` measures a randomly initialised model.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
from typing import Dict, List

from mmengine.config import DictAction


def parse_args(argv=None) -> argparse.Namespace:
    from mmembed.utils.cli_utils import doc_summary
    parser = argparse.ArgumentParser(description=doc_summary(__doc__))
    parser.add_argument('config')
    parser.add_argument('checkpoint', help='a checkpoint, or "none"')
    parser.add_argument('--images', type=int, default=18,
                        help='training images measured (one pass)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', default=None, help='JSON report')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='key=value overrides (as tools/train.py)')
    return parser.parse_args(argv)


def query_start(model, feats, samples) -> List[dict]:
    """Per image: shared pooled part vs embedding spread, and the mean
    pairwise cosine of the initial query features."""
    import torch
    import torch.nn.functional as F
    rpn = model.rpn_head
    emb = rpn.init_proposal_features.weight.detach()
    spread = (emb - emb.mean(0)).norm(dim=1).mean().item()
    rows = []
    if not hasattr(rpn, 'image_features'):
        shared = [torch.zeros(emb.shape[1])] * len(samples)
    else:
        shared = rpn.image_features(feats).detach()
    for img_shared in shared:
        queries = F.normalize(emb + img_shared[None], dim=1)
        cos = queries @ queries.t()
        n = len(cos)
        off_diag = (cos.sum() - cos.diagonal().sum()) / (n * (n - 1))
        rows.append(dict(shared_norm=img_shared.norm().item(),
                         embedding_spread=spread,
                         mean_pairwise_cosine=off_diag.item()))
    return rows


def matching_churn(model, inputs, samples) -> Dict[int, List[float]]:
    """Stage -> per-image fractions of GTs whose match changes under a
    second random soft-target encoding."""
    roi_head = model.roi_head
    codec = roi_head.mask_codec
    last_targets = {}
    churn: Dict[int, List[float]] = {}
    real_encode = codec.encode

    def recording_encode(masks, *args, **kwargs):
        last_targets['masks'] = masks
        return real_encode(masks, *args, **kwargs)

    def wrap(stage, assigner):
        real_assign = assigner.assign

        def assign(pred_instances, gt_instances, img_meta=None, **kwargs):
            first = real_assign(pred_instances, gt_instances, img_meta,
                                **kwargs)
            again = gt_instances.clone()
            again.mask_codes = real_encode(
                last_targets['masks'],
                random=None if roi_head.match_random_soft_targets else False)
            second = real_assign(pred_instances, again, img_meta, **kwargs)
            num_gts = len(gt_instances)
            if num_gts:
                matched = [(first.gt_inds == g + 1).nonzero().flatten()
                           for g in range(num_gts)]
                matched2 = [(second.gt_inds == g + 1).nonzero().flatten()
                            for g in range(num_gts)]
                changed = sum(not a.equal(b)
                              for a, b in zip(matched, matched2))
                churn.setdefault(stage, []).append(changed / num_gts)
            return first

        assigner.assign = assign

    codec.encode = recording_encode
    for stage, assigner in enumerate(roi_head.bbox_assigner):
        wrap(stage, assigner)
    try:
        model.loss(inputs, samples)
    finally:
        # unwrap, or the next image would wrap the wrappers (and every
        # level doubles the assignments)
        del codec.encode
        for assigner in roi_head.bbox_assigner:
            del assigner.assign
    return churn


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner, load_checkpoint

    import mmembed  # noqa: F401
    from mmembed.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope('mmdet')
    torch.manual_seed(args.seed)
    from mmdet.registry import MODELS
    model = MODELS.build(cfg.model)
    if args.checkpoint != 'none':
        load_checkpoint(model, args.checkpoint, map_location='cpu')
    else:
        model.init_weights()
    if not hasattr(model.roi_head, 'mask_codec'):
        raise SystemExit(f'{args.config} is not an ISTR config (its '
                         'roi_head has no mask_codec)')
    model.train()   # training-mode matching, no optimiser step
    loader_cfg = dict(cfg.train_dataloader)
    loader_cfg.update(batch_size=1, num_workers=0, persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg, seed=args.seed)
    starts, churn = [], {}
    seen = 0
    with torch.no_grad():
        for data in loader:
            data = model.data_preprocessor(data, True)
            feats = model.extract_feat(data['inputs'])
            starts += query_start(model, feats, data['data_samples'])
            for stage, values in matching_churn(
                    model, data['inputs'], data['data_samples']).items():
                churn.setdefault(stage, []).extend(values)
            seen += 1
            if seen >= args.images:
                break
    report = dict(
        config=args.config,
        checkpoint=args.checkpoint,
        images=seen,
        query_start=dict(
            shared_norm=statistics.fmean(r['shared_norm'] for r in starts),
            embedding_spread=starts[0]['embedding_spread'],
            mean_pairwise_cosine=statistics.fmean(
                r['mean_pairwise_cosine'] for r in starts)),
        matching_churn={
            f'stage{stage}': round(statistics.fmean(values), 4)
            for stage, values in sorted(churn.items())
        })
    print(json.dumps(report, indent=2))
    if args.out:
        os.makedirs(osp.dirname(args.out) or '.', exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
