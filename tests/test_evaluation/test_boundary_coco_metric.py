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
    # the 12 rows of the reference API, recall at its limits 1 / 10 / 100
    assert [k for k in results if k.startswith('coco/boundary_')] == [
        f'coco/boundary_{item}' for item in (
            'mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l', 'AR@1',
            'AR@10', 'AR@100', 'AR_s@100', 'AR_m@100', 'AR_l@100')
    ]


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
    # mmdet's name for recall at 1000 has no boundary row at 1 / 10 / 100;
    # AR@10 has no segm row in mmdet
    for item in ('AR@1000', 'AR@10'):
        with pytest.raises(KeyError, match=item):
            BoundaryCocoMetric(metric='segm', metric_items=[item])
    for max_dets in ((1, 10), (10, 1, 100), (0, 10, 100), (1, 10, 10),
                     (1, 10, 50)):
        with pytest.raises(ValueError, match='max_dets'):
            BoundaryCocoMetric(metric='segm', max_dets=max_dets)


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


@pytest.fixture
def one_image_file(tmp_path):
    """One 120 x 160 image, one class: a medium GT (60 x 50 = 3000 px) and a
    small one (20 x 20 = 400 px)."""
    anns = [rect(10, 10, 70, 60), rect(100, 80, 120, 100)]
    coco = dict(
        images=[dict(id=1, file_name='1.jpg', height=HEIGHT, width=WIDTH)],
        categories=[dict(id=1, name='date')],
        annotations=[
            dict(id=k + 1, image_id=1, category_id=1, segmentation=poly,
                 iscrowd=0, area=float((poly[0][4] - poly[0][0]) *
                                       (poly[0][5] - poly[0][1])),
                 bbox=[poly[0][0], poly[0][1], poly[0][4] - poly[0][0],
                       poly[0][5] - poly[0][1]])
            for k, poly in enumerate(anns)
        ])
    path = tmp_path / 'one.json'
    path.write_text(json.dumps(coco))
    return str(path)


def ranked_predictions(ann_file: str, num_junk: int):
    """The two GT masks as detections (medium scored 0.5, small 0.4), below
    ``num_junk`` false positives (a 6 x 6 square away from both GTs,
    scores 0.99 down)."""
    coco = COCO(ann_file)
    gt_masks = [coco.annToMask(a).astype(bool)
                for a in coco.loadAnns(coco.getAnnIds(imgIds=[1]))]
    junk = np.zeros((HEIGHT, WIDTH), dtype=bool)
    junk[100:106, 20:26] = True
    masks = np.stack([junk] * num_junk + gt_masks)
    scores = [0.99 - 1e-4 * i for i in range(num_junk)] + [0.5, 0.4]
    boxes = []
    for mask in masks:
        ys, xs = np.nonzero(mask)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return [dict(
        img_id=1, ori_shape=(HEIGHT, WIDTH),
        pred_instances=dict(
            bboxes=torch.tensor(boxes, dtype=torch.float32),
            scores=torch.tensor(scores, dtype=torch.float32),
            labels=torch.zeros(len(masks), dtype=torch.long),
            masks=torch.from_numpy(masks)))]


def boundary_rows(results):
    return {k[len('coco/boundary_'):]: v for k, v in results.items()
            if k.startswith('coco/boundary_')}


def test_official_detection_limits_pin_the_stats(one_image_file):
    """Stats worked out by hand on fixed cases (masks exact, so every IoU
    is 1 or 0; -1: no GT in that area range).

    Two exact detections: AP 1 everywhere; the top-1 detection finds one of
    the two GTs, so AR@1 = 0.5, and AR@10 = AR@100 = 1. With 100 false
    positives scored above them, the official limits count only the false
    positives (all 0), while mmdet's 100 / 300 / 1000 reach the exact
    detections at ranks 101 and 102: AP@50 = AP@75 = precision 2 / 102 at
    every recall (0.02); small: 1 / 101 (0.01; the false positives are
    small); medium: 1 (the small false positives fall outside its range and
    are ignored); AR@100 = 0, AR@300 = 1. pycocotools' summarize computes
    the mAP row at 100 detections whatever maxDets holds, so there it is 0
    (as mmdet's segm_mAP) while the rows beside it count 1000."""
    ann_file = one_image_file
    results = evaluate(BoundaryCocoMetric(ann_file=ann_file, metric='segm'),
                       ranked_predictions(ann_file, num_junk=0))
    assert boundary_rows(results) == {
        'mAP': 1.0, 'mAP_50': 1.0, 'mAP_75': 1.0, 'mAP_s': 1.0,
        'mAP_m': 1.0, 'mAP_l': -1.0, 'AR@1': 0.5, 'AR@10': 1.0,
        'AR@100': 1.0, 'AR_s@100': 1.0, 'AR_m@100': 1.0, 'AR_l@100': -1.0}

    results = evaluate(BoundaryCocoMetric(ann_file=ann_file, metric='segm'),
                       ranked_predictions(ann_file, num_junk=100))
    assert boundary_rows(results) == {
        'mAP': 0.0, 'mAP_50': 0.0, 'mAP_75': 0.0, 'mAP_s': 0.0,
        'mAP_m': 0.0, 'mAP_l': -1.0, 'AR@1': 0.0, 'AR@10': 0.0,
        'AR@100': 0.0, 'AR_s@100': 0.0, 'AR_m@100': 0.0, 'AR_l@100': -1.0}

    mmdet_limits = evaluate(
        BoundaryCocoMetric(ann_file=ann_file, metric='segm',
                           max_dets=(100, 300, 1000)),
        ranked_predictions(ann_file, num_junk=100))
    assert boundary_rows(mmdet_limits) == {
        'mAP': 0.0, 'mAP_50': 0.02, 'mAP_75': 0.02, 'mAP_s': 0.01,
        'mAP_m': 1.0, 'mAP_l': -1.0, 'AR@100': 0.0, 'AR@300': 1.0,
        'AR@1000': 1.0, 'AR_s@1000': 1.0, 'AR_m@1000': 1.0,
        'AR_l@1000': -1.0}
    # exact masks: at mmdet's limits boundary AP is mmdet's segm AP
    for item in ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l'):
        assert mmdet_limits[f'coco/boundary_{item}'] == \
            mmdet_limits[f'coco/segm_{item}'], item
