# Copyright (c) mmembed authors. All rights reserved.
"""Odd images and odd network outputs, for every model in MODEL_SPECS.

* images of 32x32, 2000x1500 and 4000x3000 (at most 5 detections there:
  each is a 12-megapixel mask), grayscale and RGBA files: loaded through
  the small configs' test pipeline, predicted, masks at the original size;
* truncated JPEG files: an error naming the file;
* training batches whose every GT is crowd (0 GT) or that hold a mask with
  a hole and a 2-polygon mask: finite losses, gradients flow;
* zero detections and injected NaN / inf box and score outputs: a valid
  result (N = 0, or the bad rows removed with a warning).

The proposal model (family 'proposal') trains on its own patch pipeline
and its boxes are its masks' tight boxes: its "box" outputs are the mask
logits of its windows (see ``_inject_proposal``).
"""
import logging
import warnings

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.logging import MMLogger
from robustness_helpers import (MODEL_IDS, MODEL_SPECS, build_dataset,
                                build_model, cap_detections, dataset_cfg,
                                image, square_polygon, suppress_detections,
                                train_dataset_cfg, write_coco)

from mmembed.datasets import ImageLoadError

GOOD = dict(image_id=1, category_id=1, bbox=[10, 10, 20, 20])


@pytest.fixture(autouse=True)
def quiet_init_logs():
    """init_weights logs every parameter at INFO; keep failures readable."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


@pytest.fixture(params=MODEL_SPECS, ids=MODEL_IDS, scope='module')
def spec(request):
    return request.param


def _check_result(result, ori_shape) -> None:
    """Every field present, consistent lengths, right dtypes, finite."""
    pred = result.pred_instances
    n = len(pred)
    assert pred.bboxes.shape == (n, 4) and pred.bboxes.dtype == torch.float32
    assert pred.scores.shape == (n, ) and pred.labels.shape == (n, )
    assert pred.labels.dtype == torch.long
    assert pred.masks.shape == (n, *ori_shape), pred.masks.shape
    assert pred.masks.dtype == torch.bool
    assert torch.isfinite(pred.bboxes).all() and torch.isfinite(
        pred.scores).all()


# --------------------------------------------------------------------- #
# image sizes and colour modes through the test pipeline
# --------------------------------------------------------------------- #
IMAGES = {
    'tiny_32x32': image(1, 32, 32),
    'large_2000x1500': image(1, 2000, 1500),
    'huge_4000x3000': image(1, 4000, 3000),
    'grayscale': image(1, _mode='L'),
    'rgba': image(1, _mode='RGBA'),
}


@pytest.mark.parametrize('kind', list(IMAGES))
def test_odd_image_predicts_at_original_size(tmp_path, spec, kind):
    img = IMAGES[kind]
    write_coco(str(tmp_path), [img], [GOOD])
    dataset = build_dataset(dataset_cfg(str(tmp_path), test_mode=True))
    item = dataset[0]
    assert item['inputs'].shape[0] == 3  # gray / RGBA decoded to 3 channels
    model = build_model(spec).eval()
    if kind.startswith('huge'):
        cap_detections(model, spec, 5)
    with torch.no_grad():
        result, = model.test_step(pseudo_collate([item]))
    _check_result(result, (img['height'], img['width']))
    assert len(result.pred_instances) > 0  # score_thr 0: something to paste
    if kind.startswith('huge'):
        assert len(result.pred_instances) <= 5


# --------------------------------------------------------------------- #
# truncated files
# --------------------------------------------------------------------- #
def _truncated_jpeg_set(tmp_path, cut: float = 0.5) -> None:
    write_coco(str(tmp_path), [image(1, file_name='000001.jpg')], [GOOD],
               draw=False)
    from PIL import Image
    pixels = np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)
    path = tmp_path / 'train' / '000001.jpg'
    Image.fromarray(pixels).save(path, quality=95)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * cut)])


@pytest.mark.parametrize('cut', [0.5, 0.05])
def test_truncated_jpeg_raises_naming_file(tmp_path, cut):
    _truncated_jpeg_set(tmp_path, cut)
    cfg = dataset_cfg(str(tmp_path))
    cfg.pipeline[0]['type'] = 'LoadImageFromFileChecked'
    dataset = build_dataset(cfg)
    with pytest.raises(ImageLoadError,
                       match=r'cannot decode image .*000001\.jpg \(img_id 1'):
        dataset[0]


def test_truncated_jpeg_with_mmcv_loader_names_file(tmp_path):
    """The baseline: mmcv's loader also names the file, but as an assert
    (gone under python -O); hence LoadImageFromFileChecked."""
    _truncated_jpeg_set(tmp_path)
    dataset = build_dataset(dataset_cfg(str(tmp_path)))
    with pytest.raises(AssertionError, match=r'failed to load image: .*\.jpg'):
        dataset[0]


# --------------------------------------------------------------------- #
# training batches with no GT or awkward masks
# --------------------------------------------------------------------- #
def _train_batch(tmp_path, anns, spec):
    """Both images through ``spec``'s training pipeline (the proposal
    model: its patch sampler, numpy seeded for the same patches)."""
    write_coco(str(tmp_path), [image(1), image(2)], anns)
    cfg = train_dataset_cfg(str(tmp_path), spec, filter_cfg=None)
    dataset = build_dataset(cfg)
    np.random.seed(0)
    return pseudo_collate([dataset[0], dataset[1]])


def _losses_and_grads(model, batch):
    model.train()
    data = model.data_preprocessor(batch, True)
    losses = model(**data, mode='loss')
    total = sum(v.sum() for k, v in losses.items() if 'loss' in k)
    for name, value in losses.items():
        if 'loss' in name:
            assert torch.isfinite(value).all(), (name, value)
    total.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None for g in grads)
    assert all(torch.isfinite(g).all() for g in grads if g is not None)
    return losses


def test_train_step_every_gt_crowd(tmp_path, spec):
    """Both images hold only crowd annotations: 0 GT, the losses are finite
    and backward works (mask losses stay connected to the graph)."""
    crowd = dict(GOOD, iscrowd=1)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        batch = _train_batch(
            tmp_path, [crowd, dict(crowd, id=2, image_id=2)], spec)
    assert all(len(s.gt_instances) == 0 for s in batch['data_samples'])
    _losses_and_grads(build_model(spec), batch)


def test_train_step_mask_with_hole_and_two_polygons(tmp_path, spec):
    from pycocotools import mask as mask_utils
    ring = np.zeros((64, 64), np.uint8)
    ring[8:40, 8:40] = 1
    ring[16:32, 16:32] = 0
    rle = mask_utils.encode(np.asfortranarray(ring))
    rle['counts'] = rle['counts'].decode()
    anns = [
        dict(GOOD, id=1, bbox=[8, 8, 32, 32], segmentation=rle,
             area=float(ring.sum())),
        dict(GOOD, id=2, image_id=2, category_id=2, bbox=[42, 4, 20, 50],
             segmentation=[square_polygon(42, 4, 20, 10),
                           square_polygon(42, 44, 20, 10)]),
    ]
    batch = _train_batch(tmp_path, anns, spec)
    losses = _losses_and_grads(build_model(spec), batch)
    assert any(spec.mask_loss in k for k in losses), sorted(losses)


# --------------------------------------------------------------------- #
# zero detections, NaN / inf outputs
# --------------------------------------------------------------------- #
def _predict_batch(model, ori=(64, 64)):
    from mmdet.testing import demo_mm_inputs
    packed = demo_mm_inputs(1, [[3, *ori]], num_items=[2], num_classes=2,
                            with_mask=True)
    return model.data_preprocessor(packed, False)


def test_zero_detections_give_empty_valid_result(spec):
    model = build_model(spec, score_thr=None)
    suppress_detections(model, spec)  # a threshold no sigmoid reaches
    model.eval()
    data = _predict_batch(model, (48, 80))
    with torch.no_grad():
        result, = model.predict(data['inputs'], data['data_samples'])
    assert len(result.pred_instances) == 0
    _check_result(result, (48, 80))


def _inject(model, spec, mode: str):
    """Wrap the box head's forward so that its top-scoring outputs carry
    NaN / inf: ``mode`` 'nan_box', 'inf_box' or 'nan_score'. Returns the
    number of poisoned locations (FCOS family), queries (ISTR) or windows
    (proposal model)."""
    if spec.family == 'istr':
        return _inject_istr(model, mode)
    if spec.family == 'proposal':
        return _inject_proposal(model, mode)
    head = model.bbox_head
    forward = head.forward
    poisoned = 4

    def poisoned_forward(feats):
        outs = list(forward(feats))
        cls_scores, bbox_preds = outs[0], outs[1]
        cls_scores[0][:, :, :2, :2] = 10.0  # top of every ranking
        if mode == 'nan_box':
            bbox_preds[0][:, :, :2, :2] = float('nan')
        elif mode == 'inf_box':
            bbox_preds[0][:, 2, :2, :2] = float('inf')
        elif mode == 'nan_score':
            cls_scores[0][:, :, :2, :2] = float('nan')
        return tuple(outs)

    head.forward = poisoned_forward
    return poisoned


def _inject_istr(model, mode: str):
    """The same on ISTR's last stage: its first two queries score highest
    and carry NaN / inf box deltas or NaN class logits."""
    head = model.roi_head.bbox_head[-1]
    forward = head.forward
    poisoned = 2

    def poisoned_forward(*args, **kwargs):
        cls_score, bbox_delta, *rest = forward(*args, **kwargs)
        cls_score, bbox_delta = cls_score.clone(), bbox_delta.clone()
        cls_score[:, :poisoned] = 10.0
        if mode == 'nan_box':
            bbox_delta[:, :poisoned] = float('nan')
        elif mode == 'inf_box':
            bbox_delta[:, :poisoned, :2] = float('inf')  # centre shift
        elif mode == 'nan_score':
            cls_score[:, :poisoned] = float('nan')
        return (cls_score, bbox_delta, *rest)

    head.forward = poisoned_forward
    return poisoned


def _inject_proposal(model, mode: str):
    """The same on the proposal model, whose boxes are not regressed (they
    are the tight boxes of its pasted masks): 'nan_box' / 'inf_box' give
    the first two windows of its first mask call (one pyramid scale) NaN /
    +inf mask logits, 'nan_score' gives the first 2 x 2 windows of the
    first score map that has as many a NaN score."""
    done = []
    if mode == 'nan_score':
        head = model.deepmask_head
        forward = head.forward

        def poisoned_forward(top):
            codes, scores = forward(top)
            if not done and min(scores.shape[-2:]) >= 2:
                scores = scores.clone()
                scores[..., :2, :2] = float('nan')
                done.append(True)
            return codes, scores

        head.forward = poisoned_forward
        return 4
    owner, attr = (model.refine_head, 'forward') if \
        model.refine_head is not None else (model.deepmask_head,
                                            'mask_logits')
    original = getattr(owner, attr)
    value = float('nan') if mode == 'nan_box' else float('inf')

    def poisoned_masks(*args, **kwargs):
        logits = original(*args, **kwargs)
        if not done and len(logits) >= 2:
            logits = logits.clone()
            logits[:2] = value
            done.append(True)
        return logits

    setattr(owner, attr, poisoned_masks)
    return 2


@pytest.mark.parametrize('mode', ['nan_box', 'nan_score'])
def test_nan_outputs_removed_with_warning(spec, mode):
    model = build_model(spec).eval()
    poisoned = _inject(model, spec, mode)
    data = _predict_batch(model)
    with pytest.warns(UserWarning, match=r'non-finite') as record:
        with torch.no_grad():
            result, = model.predict(data['inputs'], data['data_samples'])
    _check_result(result, (64, 64))
    message = next(str(w.message) for w in record
                   if 'non-finite' in str(w.message))
    # every poisoned location counted (one per class for NaN scores)
    num_removed = int(message.split('removed ')[1].split()[0])
    assert num_removed >= poisoned, message
    assert len(result.pred_instances) > 0  # the healthy rows survive


def test_inf_box_outputs_clamped_to_image(spec):
    """+inf distances (ISTR: +inf centre shifts) decode to boxes clamped at
    the image border (the FCOS decoder's max_shape, ISTR's clip to the
    image): finite, and the result stays valid. (Proposal model: +inf mask
    logits saturate to a full window, whose box is clipped to the
    image.)"""
    model = build_model(spec).eval()
    _inject(model, spec, 'inf_box')
    data = _predict_batch(model)
    with torch.no_grad():
        result, = model.predict(data['inputs'], data['data_samples'])
    _check_result(result, (64, 64))
    assert len(result.pred_instances) > 0
