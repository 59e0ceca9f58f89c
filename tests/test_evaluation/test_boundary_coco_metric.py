# Copyright (c) mmembed authors. All rights reserved.
"""BoundaryCocoMetric end to end on a tiny fake set: mask AP is mmdet's
CocoMetric's, boundary AP is 1 for perfect masks, drops below mask AP for
masks shifted by more than d, and equals mask AP when the band covers
whole masks; BoundaryCOCOeval's IoU is min(mask IoU, boundary IoU)."""
import json

import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch
from mmdet.datasets.api_wrappers import COCO
from mmdet.evaluation import CocoMetric

from mmembed.evaluation import (BoundaryCocoMetric, BoundaryCOCOeval,
                                boundary_iou, mask_iou)

CLASSES = ('date', 'fig', 'hazelnut')
HEIGHT, WIDTH = 120, 160  # diagonal 200: d = 4 at the default 2 %


def rect(x1, y1, x2, y2):
    return [[x1, y1, x2, y1, x2, y2, x1, y2]]


@pytest.fixture
def ann_file(tmp_path):
    anns = [  # (image, category, polygon)
        (1, 1, rect(10, 10, 70, 60)), (1, 2, rect(80, 20, 150, 100)),
        (2, 1, rect(20, 30, 60, 110)), (2, 3, rect(70, 5, 140, 50)),
        (2, 3, rect(90, 60, 155, 115))
    ]
    coco = dict(
        images=[
            dict(id=i, file_name=f'{i}.jpg', height=HEIGHT, width=WIDTH)
            for i in (1, 2)
        ],
        categories=[dict(id=i + 1, name=n) for i, n in enumerate(CLASSES)],
        annotations=[
            dict(id=k + 1, image_id=img, category_id=cat, segmentation=poly,
                 iscrowd=0, area=float((poly[0][4] - poly[0][0]) *
                                       (poly[0][5] - poly[0][1])),
                 bbox=[poly[0][0], poly[0][1], poly[0][4] - poly[0][0],
                       poly[0][5] - poly[0][1]])
            for k, (img, cat, poly) in enumerate(anns)
        ])
    path = tmp_path / 'gt.json'
    path.write_text(json.dumps(coco))
    return str(path)


def predictions(ann_file: str, shift: int = 0, score_noise: bool = False):
    """One prediction per GT: its rasterised mask rolled by ``shift`` px."""
    coco = COCO(ann_file)
    rng = np.random.default_rng(0)
    samples = []
    for img_id in (1, 2):
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[img_id]))
        masks = np.stack([coco.annToMask(a) for a in anns]).astype(bool)
        masks = np.roll(masks, shift, axis=2)
        boxes = []
        for mask in masks:
            ys, xs = np.nonzero(mask)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        scores = rng.random(len(anns)) if score_noise else np.ones(len(anns))
        samples.append(
            dict(
                img_id=img_id,
                ori_shape=(HEIGHT, WIDTH),
                pred_instances=dict(
                    bboxes=torch.tensor(boxes, dtype=torch.float32),
                    scores=torch.tensor(scores, dtype=torch.float32),
                    labels=torch.tensor([a['category_id'] - 1 for a in anns]),
                    masks=torch.from_numpy(masks))))
    return samples


def evaluate(metric, samples):
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, samples)
    return metric.evaluate(size=len(samples))


def test_perfect_masks_give_boundary_ap_one(ann_file):
    results = evaluate(
        BoundaryCocoMetric(ann_file=ann_file, metric=['bbox', 'segm']),
        predictions(ann_file))
    assert results['coco/segm_mAP'] == 1.0
    assert results['coco/boundary_mAP'] == 1.0
    assert {'coco/bbox_mAP', 'coco/boundary_mAP_50',
            'coco/boundary_mAP_75'} <= set(results)


def test_shifted_masks_lose_more_boundary_ap_than_mask_ap(ann_file):
    samples = predictions(ann_file, shift=6)  # 6 px > d = 4 px
    results = evaluate(BoundaryCocoMetric(ann_file=ann_file, metric='segm'),
                       samples)
    plain = evaluate(CocoMetric(ann_file=ann_file, metric='segm'),
                     predictions(ann_file, shift=6))
    # the mask AP is mmdet's, unchanged
    for key, value in plain.items():
        assert results[key] == value, key
    assert results['coco/segm_mAP_50'] == 1.0  # every mask IoU >= 0.5
    assert results['coco/boundary_mAP'] < results['coco/segm_mAP'] - 0.2


def test_band_covering_whole_masks_gives_mask_ap(ann_file):
    """With d larger than every object the band is the whole mask, so the
    boundary IoU is the mask IoU and boundary AP = mask AP."""
    results = evaluate(
        BoundaryCocoMetric(
            ann_file=ann_file, metric='segm', dilation_ratio=0.5),
        predictions(ann_file, shift=9, score_noise=True))
    for item in ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l'):
        assert results[f'coco/boundary_{item}'] == \
            results[f'coco/segm_{item}'], item
    assert 0 < results['coco/segm_mAP'] < 1


def test_cocoeval_iou_is_min_of_mask_and_boundary_iou(ann_file):
    coco = COCO(ann_file)
    samples = predictions(ann_file, shift=3)
    sample = samples[1]  # image 2: three GTs, one of them alone in its class
    masks = sample['pred_instances']['masks'].numpy()
    dets = [
        dict(image_id=2, category_id=int(label) + 1, score=1.0 - 0.1 * i,
             segmentation=rle)
        for i, (label, rle) in enumerate(zip(
            sample['pred_instances']['labels'],
            mask_utils.encode(
                np.asfortranarray(masks.transpose(1, 2, 0).astype(
                    np.uint8)))))
    ]
    coco_eval = BoundaryCOCOeval(coco, coco.loadRes(dets))
    coco_eval.params.imgIds = [2]
    coco_eval.evaluate()
    gt_anns = coco.loadAnns(coco.getAnnIds(imgIds=[2], catIds=[3]))
    gt_masks = np.stack([coco.annToMask(a) for a in gt_anns]).astype(bool)
    dt_masks = masks[sample['pred_instances']['labels'].numpy() == 2]
    want = np.minimum(mask_iou(dt_masks, gt_masks),
                      boundary_iou(dt_masks, gt_masks))
    np.testing.assert_allclose(coco_eval.ious[2, 3], want, rtol=0,
                               atol=1e-6)
    assert (boundary_iou(dt_masks, gt_masks) < mask_iou(dt_masks,
                                                        gt_masks)).any()


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="needs 'segm'"):
        BoundaryCocoMetric(metric='bbox')
    with pytest.raises(ValueError, match='dilation_ratio'):
        BoundaryCocoMetric(metric='segm', dilation_ratio=0)
    with pytest.raises(KeyError, match='AR@100'):
        BoundaryCocoMetric(metric='segm', metric_items=['AR@100'])


def test_registered_for_configs():
    from mmdet.registry import METRICS
    metric = METRICS.build(dict(type='BoundaryCocoMetric', metric='segm'))
    assert isinstance(metric, BoundaryCocoMetric)


def test_crowd_ground_truth_keeps_the_mask_iou(ann_file, tmp_path):
    """Crowd GTs use pycocotools' crowd IoU (intersection / detection
    area) on whole masks, without the boundary term (reference API)."""
    coco_json = json.loads(open(ann_file).read())
    coco_json['annotations'][0]['iscrowd'] = 1
    crowd_file = tmp_path / 'crowd.json'
    crowd_file.write_text(json.dumps(coco_json))
    coco = COCO(str(crowd_file))
    gt_mask = coco.annToMask(coco.loadAnns([1])[0]).astype(bool)
    det = np.roll(gt_mask, 6, axis=1)
    rle = mask_utils.encode(np.asfortranarray(det.astype(np.uint8)))
    coco_dt = coco.loadRes(
        [dict(image_id=1, category_id=1, score=1.0, segmentation=rle)])
    coco_eval = BoundaryCOCOeval(coco, coco_dt)
    coco_eval.params.imgIds = [1]
    coco_eval.evaluate()
    want = np.logical_and(det, gt_mask).sum() / det.sum()
    np.testing.assert_allclose(coco_eval.ious[1, 1], [[want]], rtol=1e-6)
    assert boundary_iou(det[None], gt_mask[None])[0, 0] < want
