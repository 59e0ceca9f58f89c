# Copyright (c) mmembed authors. All rights reserved.
"""Picture of what BlendMask blends: an image with its predicted masks, its
K bases, and for the best detections the blend inside the box (the cropped
bases weighted by the soft-maxed attention).

    python tools/analysis_tools/vis_blendmask.py \\
        configs/blendmask/blendmask_r18_fpn_fruits_nuts.py ckpt.pth \\
        ../shared/data/fruits_nuts/images/0.jpg --out blendmask.png
"""
import argparse
import os
import os.path as osp
import sys

import numpy as np
import torch
import torch.nn.functional as F


def parse_args(argv=None) -> argparse.Namespace:
    from mmembed.utils.cli_utils import doc_summary
    parser = argparse.ArgumentParser(description=doc_summary(__doc__))
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('image')
    parser.add_argument('--out', default='blendmask.png')
    parser.add_argument('--score-thr', type=float, default=0.3)
    parser.add_argument('--num-dets', type=int, default=3,
                        help='detections whose blend is drawn')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import cv2
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from mmdet.apis import inference_detector, init_detector
    from mmdet.visualization import DetLocalVisualizer

    import mmembed  # noqa: F401
    model = init_detector(args.config, args.checkpoint, device='cpu')
    img = cv2.cvtColor(cv2.imread(args.image), cv2.COLOR_BGR2RGB)

    # keep the bases and the box head's detections (at the network input,
    # with their attention codes) of the one inference below
    captured = {}

    def keep_bases(module, inputs, outputs):
        captured['bases'] = outputs[0]

    original_predict = model.bbox_head.predict

    def predict(*a, **k):
        captured['results'] = original_predict(*a, **k)
        return captured['results']

    hook = model.mask_head.register_forward_hook(keep_bases)
    model.bbox_head.predict = predict
    try:
        result = inference_detector(model, img)
    finally:
        hook.remove()
        del model.bbox_head.predict  # the instance attribute shadows it
    bases = captured['bases'][0]  # (K, h, w)
    dets = captured['results'][0]
    dets = dets[dets.scores > args.score_thr][:args.num_dets]
    head = model.mask_head
    with torch.no_grad():
        rois = torch.cat([dets.bboxes.new_zeros(len(dets), 1), dets.bboxes],
                         dim=1)
        pooled = head.roi_align(bases[None], rois)  # (n, K, R, R)
        attns = head.get_attentions(dets.codes)
        res = pooled.shape[-1]
        weights = F.interpolate(
            attns.reshape(len(dets), head.num_bases, head.attn_size,
                          head.attn_size), size=(res, res), mode='bilinear',
            align_corners=False).softmax(dim=1)
        blended = (pooled * weights).sum(1).sigmoid()

    vis = DetLocalVisualizer()
    vis.dataset_meta = model.dataset_meta
    vis.add_datasample('pred', img, data_sample=result, draw_gt=False,
                       show=False, pred_score_thr=args.score_thr)
    num_bases = bases.shape[0]
    cols = max(num_bases, 2 * len(dets))
    fig = plt.figure(figsize=(2.2 * cols, 9))
    grid = fig.add_gridspec(3, cols, height_ratios=[2.2, 1, 1])
    ax = fig.add_subplot(grid[0, :])
    ax.imshow(vis.get_image())
    ax.set_title(f'predicted masks (score > {args.score_thr})', fontsize=9)
    ax.axis('off')
    for k in range(num_bases):
        ax = fig.add_subplot(grid[1, k])
        ax.imshow(bases[k].numpy(), cmap='RdBu_r')
        ax.set_title(f'base {k}', fontsize=8)
        ax.axis('off')
    names = model.dataset_meta['classes']
    for i in range(len(dets)):
        label = names[int(dets.labels[i])]
        ax = fig.add_subplot(grid[2, 2 * i])
        ax.imshow(np.argmax(weights[i].numpy(), axis=0), cmap='tab10',
                  vmin=0, vmax=9, interpolation='nearest')
        ax.set_title(f'{label} {i}: largest weight', fontsize=8)
        ax.axis('off')
        ax = fig.add_subplot(grid[2, 2 * i + 1])
        ax.imshow(blended[i].numpy(), cmap='gray', vmin=0, vmax=1)
        ax.set_title(f'{label} {i}: blend (in box)', fontsize=8)
        ax.axis('off')
    fig.tight_layout()
    os.makedirs(osp.dirname(args.out) or '.', exist_ok=True)
    fig.savefig(args.out, dpi=90)
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
