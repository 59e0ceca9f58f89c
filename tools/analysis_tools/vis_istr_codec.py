# Copyright (c) mmembed authors. All rights reserved.
"""Picture of ISTR's mask codec: the PCA mean and first components, and real
masks next to their PCA / DCT reconstructions.

    python tools/analysis_tools/vis_istr_codec.py \\
        ../shared/data/coco128/annotations/instances_train2017.json \\
        --codec codec.npz --out docs/_static/istr_codec.png

Without ``--codec`` the PCA is fitted on ANN_JSON first (as
``tools/misc/fit_mask_codec.py`` does).
"""
import argparse

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from pycocotools.coco import COCO  # noqa: E402

from mmembed.models.task_modules.codecs import (DCTMaskCodec,  # noqa: E402
                                                PCAMaskCodec, load_pca_file)
from mmembed.models.task_modules.codecs.pca_fit import (  # noqa: E402
    StreamingCovariance, iter_coco_box_masks, mask_rows_for_pca)


def parse_args(argv=None) -> argparse.Namespace:
    from mmembed.utils.cli_utils import doc_summary
    parser = argparse.ArgumentParser(description=doc_summary(__doc__))
    parser.add_argument('ann_file', help='COCO instances json (masks)')
    parser.add_argument('--codec', help='fitted PCA codec .npz')
    parser.add_argument('--dim', type=int, default=60)
    parser.add_argument('--num-masks', type=int, default=8)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', required=True, help='output .png')
    return parser.parse_args(argv)


def mask_iou(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    inter = (pred & gt).flatten(1).sum(1)
    return inter / (pred | gt).flatten(1).sum(1).clamp(min=1)


def main(argv=None) -> None:
    args = parse_args(argv)
    masks = np.concatenate(list(iter_coco_box_masks(COCO(args.ann_file))))
    gen = torch.Generator().manual_seed(args.seed)
    pca = PCAMaskCodec(code_dim=args.dim)
    if args.codec:
        pca.load_arrays(**load_pca_file(args.codec))
        ratio = None
    else:
        stats = StreamingCovariance(28 * 28)
        stats.update(mask_rows_for_pca(masks, generator=gen))
        fit = stats.fit_pca(args.dim)
        ratio = fit.pop('explained_variance_ratio')
        pca.load_arrays(**fit)
    codecs = {
        f'PCA-{args.dim}': pca,
        'DCT-60': DCTMaskCodec(code_dim=60),
        'DCT-256': DCTMaskCodec(code_dim=256)
    }
    picks = np.random.default_rng(args.seed).choice(
        len(masks), size=min(args.num_masks, len(masks)), replace=False)
    gt = torch.from_numpy(masks[picks]).float()
    cols = max(len(picks), 8)
    fig, axes = plt.subplots(
        2 + len(codecs), cols, figsize=(1.6 * cols, 1.8 * (2 + len(codecs))))
    for ax in axes.flat:
        ax.axis('off')
    # row 0: mean logit map and the first components (scaled by sqrt var)
    axes[0, 0].imshow(pca.means.view(28, 28).sigmoid(), cmap='gray')
    axes[0, 0].set_title('mean', fontsize=8)
    comps = pca.components * pca.explained_variances.sqrt()[:, None]
    for k in range(cols - 1):
        axes[0, k + 1].imshow(comps[k].view(28, 28), cmap='RdBu')
        title = f'c{k}' if ratio is None else f'c{k} {100 * ratio[k]:.1f}%'
        axes[0, k + 1].set_title(title, fontsize=8)
    for j in range(len(picks)):
        axes[1, j].imshow(gt[j], cmap='gray', vmin=0, vmax=1)
        axes[1, j].set_title('GT 28x28', fontsize=8)
    for row, (name, codec) in enumerate(codecs.items(), start=2):
        probs = codec.decode(codec.encode(gt, generator=gen))
        ious = mask_iou(probs >= 0.5, gt > 0)
        for j in range(len(picks)):
            axes[row, j].imshow(probs[j], cmap='gray', vmin=0, vmax=1)
            axes[row, j].set_title(f'{name} IoU {ious[j]:.2f}', fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
