# Copyright (c) mmembed authors. All rights reserved.
"""Measurements of the benchmark suite. Each function runs in its own
process (started by ``benchmarks/run.py``) and returns a JSON-able dict.

Protocol (docs/benchmarks.md): batch 1 inference through ``model.test_step``
(data preprocessor + network + post-processing including the paste of masks
to the original image size; no drawing, no RLE), every image shape warmed up
first, then median and spread over repeats, random weights with every model
forced to return the same number of detections. On CUDA every interval is
timed with CUDA events recorded on the stream (no synchronisation inside a
timed call), resolved after the call.
"""
import math
import os
import os.path as osp
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
COCO128 = osp.normpath(osp.join(REPO, '..', 'shared', 'data', 'coco128'))

# name -> (config, family); 'mmdet::' configs come from the mmdet wheel
MODELS: Dict[str, Tuple[str, str]] = {
    'embedmask': ('configs/embedmask/embedmask_r50_fpn_1x_coco.py', 'fcos'),
    'embedmask_v3': ('configs/embedmask/embedmask_r50_fpn_v3_1x_coco.py',
                     'fcos'),
    # mmembed's recommended variant (docs/embedmask.md)
    'embedmask_recommended': ('configs/embedmask/embedmask_r50_fpn_'
                              'recommended_1x_coco.py', 'fcos'),
    'blendmask': ('configs/blendmask/blendmask_r50_fpn_1x_coco.py', 'fcos'),
    'fcos': ('mmdet::fcos/fcos_r50-caffe_fpn_gn-head-center-normbbox-'
             'centeronreg-giou_1x_coco.py', 'fcos'),
    'condinst': ('mmdet::condinst/condinst_r50_fpn_ms-poly-90k_coco_'
                 'instance.py', 'fcos'),
    'mask_rcnn': ('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', 'rcnn'),
    'yolact': ('mmdet::yolact/yolact_r50_1xb8-55e_coco.py', 'yolact'),
    # the SharpMask neck in place of FPN, everything else as the rows above
    'embedmask_sharpmask': ('configs/sharpmask/embedmask_r50_sharpmask_1x_'
                            'coco.py', 'fcos'),
    'mask_rcnn_sharpmask': ('configs/sharpmask/mask-rcnn_r50_sharpmask_1x_'
                            'coco.py', 'rcnn'),
    # SharpMaskFPN: FPN for the boxes + the mask-only path to stride 2
    'embedmask_sharpmask_fpn': ('configs/sharpmask/embedmask_r50_sharpmask_'
                                'fpn_1x_coco.py', 'fcos'),
    'blendmask_sharpmask_fpn': ('configs/sharpmask/blendmask_r50_sharpmask_'
                                'fpn_1x_coco.py', 'fcos'),
    'mask_rcnn_sharpmask_fpn': ('configs/sharpmask/mask-rcnn_r50_sharpmask_'
                                'fpn_1x_coco.py', 'rcnn'),
    # query-based, 6 stages each; queries = N (see force_detections)
    'istr': ('configs/istr/istr_r50_fpn_3x_coco.py', 'query'),
    # official v2 (conv mask branch on 28 x 28 RoIs, 112 x 112 PCA codec)
    'istr_v2': ('configs/istr/istr_v2_r50_fpn_3x_coco.py', 'query'),
    # the recommended small-data keys (dense code head, dynamic query
    # fusion, DCT-64) on the same R-50 v2
    'istr_v2_recommended': ('configs/istr/istr_v2_r50_fpn_recommended_'
                            'dynamic_fusion_dense_code_dct64_3x_coco.py',
                            'query'),
    'queryinst': ('mmdet::queryinst/queryinst_r50_fpn_1x_coco.py', 'query'),
    # the peer with mmembed's SeparableRoIExtractor (box and mask RoIs):
    # what the faster CPU RoIAlign alone is worth to QueryInst
    'queryinst_separable_roi': ('configs/queryinst/queryinst_r50_fpn_'
                                'separable_roi_1x_coco.py', 'query'),
    # EfficientNet-Lite0 twins (ImageNet weights from the installed package)
    # and the mmdet peers on the same backbone: the 'lite0' group
    'embedmask_lite0': ('configs/embedmask/embedmask_lite0_fpn_1x_coco.py',
                        'fcos'),
    'blendmask_lite0': ('configs/blendmask/blendmask_lite0_fpn_1x_coco.py',
                        'fcos'),
    'embedmask_sharpmask_lite0': ('configs/sharpmask/embedmask_lite0_'
                                  'sharpmask_1x_coco.py', 'fcos'),
    'istr_lite0': ('configs/istr/istr_lite0_fpn_3x_coco.py', 'query'),
    'condinst_lite0': ('configs/condinst/condinst_lite0_fpn_1x_coco.py',
                       'fcos'),
    'queryinst_lite0': ('configs/queryinst/queryinst_lite0_fpn_1x_coco.py',
                        'query'),
    'mask_rcnn_lite0': ('configs/mask_rcnn/mask-rcnn_lite0_fpn_1x_coco.py',
                        'rcnn'),
}
# Lite0 model -> (its R-50 twin, the mmdet peer on Lite0)
LITE0_PAIRS = {
    'embedmask_lite0': ('embedmask', 'condinst_lite0'),
    'blendmask_lite0': ('blendmask', 'condinst_lite0'),
    'embedmask_sharpmask_lite0': ('embedmask_sharpmask', 'embedmask_lite0'),
    'istr_lite0': ('istr', 'queryinst_lite0'),
}
LITE0_SHORT_SIDE = 640  # the Lite0 configs' input size
# The 'proposals' group: the segment-proposal model (SharpMaskProposer) with
# its SharpMask refinement against plain DeepMask, the same trunk (R-50
# layer1-3, the first stage of the SharpMask config inherits the DeepMask
# one) and the same pyramid of the release's scales, 2^-2.5 ... 2^0.5 of
# the full image, top 1000 windows, no NMS, as the configs set them.
# name -> config; the ratio is sharpmask / deepmask
PROPOSAL_MODELS: Dict[str, str] = {
    'sharpmask_proposals': 'configs/sharpmask/sharpmask_r50_coco_proposals.py',
    'deepmask_proposals': 'configs/sharpmask/deepmask_r50_coco_proposals.py',
}
YOLACT_SIZE = 550  # YOLACT's own square input; it is never resized to 800


# ---------------------------------------------------------------------- #
# helpers
# ---------------------------------------------------------------------- #
def config_path(name: str) -> str:
    path = MODELS[name][0]
    if path.startswith('mmdet::'):
        import mmdet
        return osp.join(
            osp.dirname(mmdet.__file__), '.mim', 'configs',
            path[len('mmdet::'):])
    return osp.join(REPO, path)


def read_rss_mib() -> Tuple[float, float]:
    """(current RSS, peak RSS since the last reset) of this process, MiB."""
    values = {}
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(('VmRSS:', 'VmHWM:')):
                key, kb = line.split()[:2]
                values[key] = int(kb) / 1024
    return values['VmRSS:'], values['VmHWM:']


def reset_peak_memory(device: str) -> None:
    """Reset the peak-memory counter (CUDA: allocator; CPU: VmHWM)."""
    if device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
        return
    try:  # Linux: writing 5 to clear_refs resets the peak RSS (VmHWM)
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        pass


def peak_memory_mib(device: str) -> float:
    if device.startswith('cuda'):
        return torch.cuda.max_memory_allocated() / 2**20
    return read_rss_mib()[1]


def sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


PROTOCOL = 2  # 1: 2 warm-ups, host timers around synchronised calls


def stats(times_ms: List[float]) -> Dict[str, float]:
    arr = np.asarray(times_ms)
    return dict(
        median_ms=float(np.median(arr)),
        p10_ms=float(np.percentile(arr, 10)),
        p25_ms=float(np.percentile(arr, 25)),
        p75_ms=float(np.percentile(arr, 75)),
        p90_ms=float(np.percentile(arr, 90)),
        mean_ms=float(arr.mean()),
        std_ms=float(arr.std()),
        n=len(arr))


class IntervalTimer:
    """Times intervals without disturbing what it times.

    CPU: ``time.perf_counter``. CUDA: a pair of CUDA events recorded on the
    current stream; nothing waits for the GPU until :meth:`resolve`, which
    the caller invokes once the timed ``test_step`` is over. (Host timers
    around synchronised calls, protocol 1, added a synchronisation to every
    timed stage and measured the host's launch latency while the GPU
    idled.)
    """

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith('cuda')
        self.pending: List[Tuple[Any, Any, list, int]] = []

    def start(self) -> Any:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def stop(self, start: Any, sink: list) -> None:
        """Append the interval (ms) to ``sink``; on CUDA a placeholder that
        :meth:`resolve` fills in."""
        if not self.cuda:
            sink.append((time.perf_counter() - start) * 1000)
            return
        end = torch.cuda.Event(enable_timing=True)
        end.record()
        sink.append(None)
        self.pending.append((start, end, sink, len(sink) - 1))

    def resolve(self) -> None:
        """Wait for the GPU once and fill in every pending interval."""
        if not self.pending:
            return
        torch.cuda.synchronize()
        for start, end, sink, index in self.pending:
            sink[index] = start.elapsed_time(end)
        self.pending = []


def coco128_images(count: int) -> List[str]:
    folder = osp.join(COCO128, 'train2017')
    if not osp.isdir(folder):
        raise FileNotFoundError(
            f'coco128 images not found at {folder}; the suite reads '
            '../shared/data/coco128')
    names = sorted(os.listdir(folder))[:count]
    return [osp.join(folder, n) for n in names]


def force_detections(model_cfg, family: str, num_dets: int) -> None:
    """Make random-weight models return exactly ``num_dets`` detections."""
    test_cfg = model_cfg.test_cfg
    if family == 'query':
        # top-N of the last stage's Q x K scores, no threshold, no NMS. mmdet
        # 3.3.0's QueryInst cannot return fewer detections than it has
        # queries (SparseRoIHead.predict_bbox asserts when max_per_img <
        # num_proposals with a mask head), so there Q = N; ISTR (300 queries
        # in its COCO config) gets the same Q, so both do the same box-stage
        # work per image
        test_cfg.rcnn.max_per_img = num_dets
        model_cfg.rpn_head.num_proposals = num_dets
        return
    if family == 'rcnn':
        test_cfg.rpn.max_per_img = max(test_cfg.rpn.max_per_img, num_dets)
        test_cfg.rcnn.score_thr = 0.0
        test_cfg.rcnn.max_per_img = num_dets
    else:
        test_cfg.score_thr = 0.0
        test_cfg.max_per_img = num_dets
        test_cfg.nms_pre = max(test_cfg.get('nms_pre', 1000), num_dets)
        if family == 'yolact':
            test_cfg.top_k = max(test_cfg.get('top_k', 200), num_dets)


def realistic_fcos_boxes(model) -> None:
    """Random FCOS-family heads regress near-zero boxes, which would make
    box-restricted mask work unrealistically cheap. Setting the regression
    bias to 2 makes every location predict (l, t, r, b) = 2 strides, i.e. a
    box 4 strides wide (32 px on P3 ... 512 px on P7)."""
    head = getattr(model, 'bbox_head', None)
    if head is not None and hasattr(head, 'conv_reg') and getattr(
            head, 'norm_on_bbox', False):
        torch.nn.init.constant_(head.conv_reg.bias, 2.0)


def realistic_query_boxes(model) -> None:
    """Random query-based heads refine their whole-image initial boxes to
    arbitrary ones (mmdet's mask paste then fails on boxes entirely outside
    the image). Both query models get the same fixed set of boxes instead:
    initial boxes drawn once (seeded) with centres anywhere in the image and
    sides 5-50 % of it, and box deltas of zero in every stage, so the boxes
    stay put."""
    rpn = getattr(model, 'rpn_head', None)
    if rpn is None or not hasattr(rpn, 'init_proposal_bboxes'):
        return
    gen = torch.Generator().manual_seed(0)
    num = rpn.init_proposal_bboxes.weight.shape[0]
    centres = torch.rand(num, 2, generator=gen)
    sides = 0.05 + 0.45 * torch.rand(num, 2, generator=gen)
    with torch.no_grad():
        rpn.init_proposal_bboxes.weight.copy_(torch.cat([centres, sides], 1))
        for head in model.roi_head.bbox_head:
            head.fc_reg.weight.zero_()
            head.fc_reg.bias.zero_()


def build_model(name: str, num_dets: int, device: str):
    """Random-weight model of ``name`` with a fixed detection count."""
    from mmdet.registry import MODELS as REGISTRY
    from mmengine.config import Config

    import mmembed  # noqa: F401
    from mmembed.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(config_path(name))
    cfg.model.backbone.init_cfg = None
    codec = cfg.model.get('roi_head', {}).get('mask_codec', None)
    if codec is not None and 'codec_file' in codec:
        # ISTR's PCA codec: a fitted file only changes the numbers in the
        # buffers, not the work; the placeholder basis times the same
        codec.codec_file = None
    force_detections(cfg.model, MODELS[name][1], num_dets)
    model = REGISTRY.build(cfg.model)
    # the COCO configs' SyncBN (BlendMask's bases) needs a process group;
    # one process measures the same arithmetic with plain BN
    from mmengine.model import revert_sync_batchnorm
    model = revert_sync_batchnorm(model)
    model.init_weights()
    if MODELS[name][1] == 'fcos':
        realistic_fcos_boxes(model)
    elif MODELS[name][1] == 'query':
        realistic_query_boxes(model)
    return model.to(device).eval(), cfg


def test_pipeline(name: str, scale: Tuple[int, int],
                  with_ann: bool = False) -> Callable:
    from mmcv.transforms import Compose

    from mmembed.utils import register_all_modules
    register_all_modules()
    if MODELS[name][1] == 'yolact':
        resize = dict(
            type='Resize', scale=(YOLACT_SIZE, YOLACT_SIZE), keep_ratio=False)
    else:
        resize = dict(type='Resize', scale=scale, keep_ratio=True)
    steps = [dict(type='LoadImageFromFile'), resize]
    if with_ann:
        steps.append(dict(type='LoadAnnotations', with_bbox=True,
                          with_mask=True))
    steps.append(
        dict(
            type='PackDetInputs',
            meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                       'scale_factor')))
    return Compose(steps)


def coco128_batches(pipeline: Callable, num_images: int) -> List[dict]:
    """Batch-1 ``test_step`` inputs: the first ``num_images`` coco128
    images through ``pipeline``, each collated on its own."""
    from mmengine.dataset import pseudo_collate
    return [
        pseudo_collate([pipeline(dict(img_path=p, img_id=i))])
        for i, p in enumerate(coco128_images(num_images))
    ]


# ---------------------------------------------------------------------- #
# measurements
# ---------------------------------------------------------------------- #
def measure_inference(name: str,
                      scale: Tuple[int, int],
                      num_dets: int = 100,
                      device: str = 'cpu',
                      warmup: Optional[int] = None,
                      repeats: Optional[int] = None,
                      num_images: int = 5,
                      box_only: bool = False) -> Dict[str, Any]:
    """Batch-1 ``test_step`` latency and peak memory on coco128 images.

    ``box_only`` times the same detector with its mask branch skipped
    (backbone + neck + box head + box post-processing): the denominator of
    the mask-stage overhead.

    Every image (each has its own shape) is warmed up ``warmup`` times
    (default: once on CPU, 3 times on CUDA, where cuDNN picks its kernels
    per shape). ``repeats`` defaults to 10 on CPU and 30 on CUDA.
    """
    cuda = device.startswith('cuda')
    warmup = (3 if cuda else 1) if warmup is None else warmup
    repeats = (30 if cuda else 10) if repeats is None else repeats
    scale = tuple(scale)  # JSON hands lists over; mmcv wants a tuple
    torch.manual_seed(0)
    model, _ = build_model(name, num_dets, device)
    batches = coco128_batches(test_pipeline(name, scale), num_images)
    timer = IntervalTimer(device)
    stages = _instrument_stages(model, timer)
    if box_only:
        _make_box_only(model)
    counts, box_areas, times = [], [], []
    with torch.no_grad():
        for _ in range(warmup):
            for batch in batches:  # every shape
                model.test_step(batch)
        sync(device)
        timer.resolve()
        for record in stages.values():
            record.clear()
        reset_peak_memory(device)
        for i in range(repeats):
            batch = batches[i % len(batches)]
            sync(device)
            start = timer.start()
            out = model.test_step(batch)
            timer.stop(start, times)
            timer.resolve()
            pred = out[0].pred_instances
            counts.append(len(pred))
            h, w = out[0].ori_shape
            b = pred.bboxes
            box_areas.append(
                float(((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).sum()) /
                (h * w))
    result = dict(
        model=name,
        scale=list(scale) if MODELS[name][1] != 'yolact' else
        [YOLACT_SIZE, YOLACT_SIZE],
        box_only=box_only,
        protocol=PROTOCOL,
        warmup_per_shape=warmup,
        num_shapes=len({tuple(b['inputs'][0].shape) for b in batches}),
        timer='cuda_events' if cuda else 'perf_counter',
        num_dets_requested=num_dets,
        num_dets=sorted(set(counts)),
        summed_box_area_over_image=float(np.mean(box_areas)),
        peak_memory_mib=peak_memory_mib(device),
        **stats(times))
    for key, record in stages.items():
        if not record:
            continue
        # a stage may run once per image: sum per test_step
        per_step = np.asarray(record).reshape(len(times), -1).sum(1)
        result[key] = stats(per_step.tolist())
    if 'preprocess' in result:
        result['preprocess_share'] = (result['preprocess']['median_ms'] /
                                      result['median_ms'])
    return result


def measure_interleaved(names: List[str],
                        peer: str,
                        scale: Tuple[int, int],
                        num_dets: int = 100,
                        device: str = 'cpu',
                        rounds: int = 15,
                        num_images: int = 5) -> Dict[str, Any]:
    """Batch-1 ``test_step`` latency of several models in one process, in
    alternating rounds, each against ``peer`` round by round.

    ``measure_inference`` times one model per process, one after the other:
    a drift of the machine between two processes (a busy neighbour, the
    clock) lands on one model only, and on a shared 2-core host the same
    model moved by 10-20 % between suite runs. Here every round times each
    model once on the same image (the order rotates per round), so a drift
    hits all of them alike; ``over_peer`` is the median over rounds of the
    model's time divided by the peer's in that round. Every model is warmed
    up on every image first. ``mask_stage`` as in ``measure_inference``.
    """
    if peer not in names:
        raise ValueError(f'peer {peer!r} must be one of the models {names}')
    scale = tuple(scale)
    models, stages = {}, {}
    timer = IntervalTimer(device)
    for name in names:
        torch.manual_seed(0)
        models[name], _ = build_model(name, num_dets, device)
        stages[name] = _instrument_stages(models[name], timer)
    batches = coco128_batches(test_pipeline(peer, scale), num_images)
    times: Dict[str, List[float]] = {name: [] for name in names}
    with torch.no_grad():
        for model in models.values():
            for batch in batches:
                model.test_step(batch)
        sync(device)
        timer.resolve()
        for record in stages.values():
            for sink in record.values():
                sink.clear()
        for round_id in range(rounds):
            batch = batches[round_id % len(batches)]
            shift = round_id % len(names)
            for name in names[shift:] + names[:shift]:
                sync(device)
                start = timer.start()
                models[name].test_step(batch)
                timer.stop(start, times[name])
                timer.resolve()
    result = dict(peer=peer, scale=list(scale), rounds=rounds,
                  num_shapes=len({tuple(b['inputs'][0].shape)
                                  for b in batches}),
                  num_dets_requested=num_dets, protocol=PROTOCOL,
                  timer='cuda_events' if device.startswith('cuda')
                  else 'perf_counter', models={})
    peer_times = np.asarray(times[peer])
    for name in names:
        ratios = np.asarray(times[name]) / peer_times
        entry = dict(stats(times[name]),
                     over_peer=float(np.median(ratios)),
                     over_peer_p25=float(np.percentile(ratios, 25)),
                     over_peer_p75=float(np.percentile(ratios, 75)))
        record = stages[name].get('mask_stage')
        if record:
            entry['mask_stage'] = stats(
                np.asarray(record).reshape(rounds, -1).sum(1).tolist())
        result['models'][name] = entry
    return result


def _timed(owner, attr: str, record: list, timer: IntervalTimer) -> None:
    """Replace ``owner.attr`` by a wrapper that appends its time (ms)."""
    original = getattr(owner, attr)

    def timed(*args, **kwargs):
        start = timer.start()
        out = original(*args, **kwargs)
        timer.stop(start, record)
        return out

    setattr(owner, attr, timed)


def _instrument_stages(model, timer: IntervalTimer) -> Dict[str, list]:
    """Time inside test_step: data preprocessing (``preprocess``: the data
    preprocessor's normalise + pad, and the host-to-device copy), the whole
    mask stage (``mask_stage``: mask head / RoI mask branch, towers
    included) and the per-detection mask post-processing (``mask_paste``:
    EmbedMask's kernel + paste, CondInst's, Mask R-CNN's and QueryInst's
    ``predict_by_feat``, ISTR's decode + paste)."""
    record: Dict[str, list] = {
        'preprocess': [],
        'mask_stage': [],
        'mask_paste': []
    }
    _timed(model.data_preprocessor, 'forward', record['preprocess'], timer)
    mask_head = getattr(model, 'mask_head', None)
    if mask_head is not None:
        _timed(mask_head, 'predict', record['mask_stage'], timer)
        paste = '_predict_masks_single' if hasattr(
            mask_head, '_predict_masks_single') else 'predict_by_feat'
        _timed(mask_head, paste, record['mask_paste'], timer)
    elif hasattr(getattr(model, 'roi_head', None), 'predict_masks'):
        # ISTR v1: the mask stage is the code MLP of every box stage (its
        # FCs, norms and activations on the Q query features) plus the
        # decode of the N codes and their paste; v2: the 28 x 28 pooling of
        # the N detections' boxes and the conv branch, plus decode and
        # paste; 'mask_paste' is decode and paste alone
        if getattr(model.roi_head, 'conv_codes', False):
            _timed(model.roi_head, 'conv_mask_codes', record['mask_stage'],
                   timer)
        else:
            for stage_head in model.roi_head.bbox_head:
                for layer in list(stage_head.mask_fcs) + [stage_head.fc_mask]:
                    _timed(layer, 'forward', record['mask_stage'], timer)
        # paste wrapped first, so the stage's interval encloses it
        _timed(model.roi_head, 'predict_masks', record['mask_paste'], timer)
        _timed(model.roi_head, 'predict_masks', record['mask_stage'], timer)
    elif hasattr(getattr(model, 'roi_head', None), 'predict_mask'):
        _timed(model.roi_head, 'predict_mask', record['mask_stage'], timer)
        mask_head = model.roi_head.mask_head
        if isinstance(mask_head, torch.nn.ModuleList):
            # QueryInst: one mask head per stage, the last one predicts
            mask_head = mask_head[-1]
        _timed(mask_head, 'predict_by_feat', record['mask_paste'], timer)
    return record


def _make_box_only(model) -> None:
    """Skip the mask branch of a one-stage instance segmentor."""
    head = model.bbox_head

    def predict(batch_inputs, batch_data_samples, rescale=True):
        x = model.extract_feat(batch_inputs)
        results = head.predict(x, batch_data_samples, rescale=rescale)
        return model.add_pred_to_datasample(batch_data_samples, results)

    model.predict = predict


def measure_mask_scaling(name: str, num_dets: int, short_side: int,
                         device: str = 'cpu', warmup: Optional[int] = None,
                         repeats: Optional[int] = None) -> Dict[str, Any]:
    """Latency, mask-stage time and peak memory for one (N, image size)."""
    result = measure_inference(name, scale_for(short_side), num_dets, device,
                               warmup, repeats)
    result['short_side'] = short_side
    return result


def measure_train_step(name: str, scale: Tuple[int, int],
                       device: str = 'cpu', batch_size: int = 2,
                       warmup: int = 2, repeats: int = 5) -> Dict[str, Any]:
    """Seconds per training iteration (forward, backward, SGD step) and peak
    memory for a batch of coco128 images with their real annotations."""
    from mmdet.datasets import CocoDataset
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import build_optim_wrapper

    scale = tuple(scale)
    torch.manual_seed(0)
    model, cfg = build_model(name, 100, device)
    model.train()
    dataset = CocoDataset(
        data_root=COCO128 + '/',
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
            dict(type='Resize', scale=scale, keep_ratio=True),
            dict(type='PackDetInputs')
        ])
    optim = build_optim_wrapper(
        model,
        dict(optimizer=dict(type='SGD', lr=1e-4, momentum=0.9,
                            weight_decay=1e-4)))
    batches = [
        pseudo_collate([dataset[i * batch_size + j]
                        for j in range(batch_size)])
        for i in range(warmup + repeats)
    ]
    times = []
    for i, batch in enumerate(batches):
        if i == warmup:
            sync(device)
            reset_peak_memory(device)
        sync(device)
        start = time.perf_counter()
        model.train_step(batch, optim)
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    arr = np.asarray(times)
    return dict(
        model=name,
        scale=list(scale),
        batch_size=batch_size,
        median_s=float(np.median(arr)),
        mean_s=float(arr.mean()),
        std_s=float(arr.std()),
        n=len(arr),
        peak_memory_mib=peak_memory_mib(device))


def measure_lovasz(num_inst: int, height: int, width: int,
                   device: str = 'cpu', repeats: int = 5) -> Dict[str, Any]:
    """Batched LovaszHingeLoss vs a per-instance loop of the reference
    algorithm (sort + Jaccard gradient per map), forward and backward."""
    from mmembed.models.losses import lovasz_hinge

    def reference_loop(logits, labels):
        losses = []
        for row_logits, row_labels in zip(logits, labels):
            signs = 2 * row_labels - 1
            errors = 1 - row_logits * signs
            errors_sorted, perm = torch.sort(errors, descending=True)
            gt_sorted = row_labels[perm]
            gts = gt_sorted.sum()
            intersection = gts - gt_sorted.cumsum(0)
            union = gts + (1 - gt_sorted).cumsum(0)
            jaccard = 1 - intersection / union
            jaccard[1:] = jaccard[1:] - jaccard[:-1]
            losses.append(torch.dot(torch.relu(errors_sorted), jaccard))
        return torch.stack(losses)

    torch.manual_seed(0)
    logits = torch.randn(num_inst, height * width, device=device)
    labels = (torch.rand(num_inst, height * width, device=device) >
              0.7).float()

    def run(fn) -> Tuple[Dict[str, float], Dict[str, float], Tensor]:
        fwd, bwd = [], []
        for i in range(repeats + 1):
            x = logits.clone().requires_grad_()
            sync(device)
            start = time.perf_counter()
            loss = fn(x, labels)
            sync(device)
            mid = time.perf_counter()
            loss.sum().backward()
            sync(device)
            end = time.perf_counter()
            if i:  # the first call is a warm-up
                fwd.append((mid - start) * 1000)
                bwd.append((end - mid) * 1000)
        return stats(fwd), stats(bwd), loss.detach()

    batched_fwd, batched_bwd, batched_loss = run(lovasz_hinge)
    loop_fwd, loop_bwd, loop_loss = run(reference_loop)
    return dict(
        num_inst=num_inst,
        height=height,
        width=width,
        batched_forward=batched_fwd,
        batched_backward=batched_bwd,
        loop_forward=loop_fwd,
        loop_backward=loop_bwd,
        max_abs_diff=float((batched_loss - loop_loss).abs().max()),
        speedup_forward_backward=(loop_fwd['median_ms'] +
                                  loop_bwd['median_ms']) /
        (batched_fwd['median_ms'] + batched_bwd['median_ms']))


def measure_onnx(**kwargs) -> Dict[str, Any]:
    """ONNX Runtime vs PyTorch on the CPU, same process and threads
    (``tools/deployment/onnx_latency.py``, which owns the export)."""
    import sys
    sys.path.insert(0, osp.join(REPO, 'tools', 'deployment'))
    try:
        from onnx_latency import measure_onnx_latency
    finally:
        sys.path.pop(0)
    return measure_onnx_latency(**kwargs)


def build_proposer(name: str, device: str):
    """Random-weight SharpMaskProposer of ``name`` (PROPOSAL_MODELS), the
    config's test_cfg untouched (pyramid, 1000 windows, threshold).

    Both configs build the trunk and the DeepMask head first, in the same
    order, and ``init_weights`` initialises the trunk first: seeded before
    each, the two models get the same trunk and head weights and score the
    same windows (equal ``score_checksum``; run.summarise checks it).
    SharpMask only adds its refinement, built and initialised last."""
    from mmdet.registry import MODELS as REGISTRY
    from mmengine.config import Config

    import mmembed  # noqa: F401
    from mmembed.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(osp.join(REPO, PROPOSAL_MODELS[name]))
    cfg.model.backbone.init_cfg = None  # no ImageNet weights here
    torch.manual_seed(0)
    model = REGISTRY.build(cfg.model)
    # the refinement's construction drew numbers after the trunk's: seed
    # again so the trunk's Kaiming init draws the same in both models
    torch.manual_seed(1)
    model.init_weights()
    return model.to(device).eval(), cfg


def proposal_pipeline(cfg) -> Callable:
    """The config's test pipeline (full images: the model builds its own
    pyramid) without ``LoadAnnotations``: timing needs no labels."""
    from mmcv.transforms import Compose
    steps = [dict(step) for step in cfg.test_pipeline
             if step['type'] != 'LoadAnnotations']
    return Compose(steps)


def measure_proposals(name: str,
                      device: str = 'cpu',
                      warmup: Optional[int] = None,
                      repeats: Optional[int] = None,
                      num_images: int = 5) -> Dict[str, Any]:
    """Batch-1 ``test_step`` time per image and peak memory of a segment
    proposal model (SharpMask or plain DeepMask) on full coco128 images.

    One call = data preprocessor + the trunk and the score branch on every
    scale of the pyramid + the masks of the top ``num_proposals`` windows
    (SharpMask: horizontal nets once per scale and per-window refinement
    to 160 x 160; DeepMask: its 56 x 56 mask branch) + the paste of every
    mask at the original image size and its threshold. With no score
    threshold and no NMS (the release), the work does not depend on the
    weights: random weights time what trained ones would.

    Stages timed inside the same calls: ``pyramid`` (trunk + DeepMask
    head over all scales), ``mask_stage`` (everything that makes mask
    logits) and ``mask_paste`` (``paste_box_masks``), each summed per call.
    """

    from mmembed.models.detectors import sharpmask_proposer

    cuda = device.startswith('cuda')
    warmup = (3 if cuda else 1) if warmup is None else warmup
    repeats = (30 if cuda else 10) if repeats is None else repeats
    model, cfg = build_proposer(name, device)
    batches = coco128_batches(proposal_pipeline(cfg), num_images)
    timer = IntervalTimer(device)
    record: Dict[str, list] = dict(pyramid=[], mask_stage=[], mask_paste=[])
    _timed(model, 'extract_feat', record['pyramid'], timer)
    _timed(model.deepmask_head, 'forward', record['pyramid'], timer)
    if model.refine_head is not None:
        _timed(model.refine_head, 'forward', record['mask_stage'], timer)
        _timed(model.refine_head, 'horizontal', record['mask_stage'], timer)
    else:
        _timed(model.deepmask_head, 'mask_logits', record['mask_stage'],
               timer)
    # the detector calls the module-level name: wrap it there
    _timed(sharpmask_proposer, 'paste_box_masks', record['mask_paste'],
           timer)
    # the summed scores of every timed call: the two models see the same
    # images in the same order, so equal sums mean the same windows
    score_checksum = 0.0
    with torch.no_grad():
        for _ in range(warmup):
            for batch in batches:  # every shape
                model.test_step(batch)
        sync(device)
        timer.resolve()
        for entries in record.values():
            entries.clear()
        reset_peak_memory(device)
        times: List[float] = []
        per_call: Dict[str, List[float]] = {key: [] for key in record}
        counts = []
        for i in range(repeats):
            batch = batches[i % len(batches)]
            # the number of stage calls varies with the image (scales that
            # hold chosen windows): sum each call's own entries
            marks = {key: len(entries) for key, entries in record.items()}
            sync(device)
            start = timer.start()
            out = model.test_step(batch)
            timer.stop(start, times)
            timer.resolve()
            for key, entries in record.items():
                per_call[key].append(float(sum(entries[marks[key]:])))
            counts.append(len(out[0].pred_instances))
            score_checksum += float(out[0].pred_instances.scores.sum())
    test_cfg = model.test_cfg
    result = dict(
        model=name,
        config=PROPOSAL_MODELS[name],
        trunk=f"ResNet-{cfg.model.backbone.depth} "
        f"({cfg.model.backbone.num_stages} stages)",
        refinement=model.refine_head is not None,
        mask_size=(model.refine_head.out_size if model.refine_head
                   is not None else model.deepmask_head.mask_size),
        scales=[float(s) for s in test_cfg['scales']],
        num_proposals_requested=int(test_cfg['num_proposals']),
        num_proposals=sorted(set(counts)),
        image_shapes=[list(b['inputs'][0].shape[-2:]) for b in batches],
        protocol=PROTOCOL,
        warmup_per_shape=warmup,
        timer='cuda_events' if cuda else 'perf_counter',
        score_checksum=score_checksum,
        peak_memory_mib=peak_memory_mib(device),
        **stats(times))
    for key, values in per_call.items():
        result[key] = stats(values)
    return result


WORKERS: Dict[str, Callable[..., Dict[str, Any]]] = {
    'onnx': measure_onnx,
    'inference': measure_inference,
    'interleaved': measure_interleaved,
    'mask_scaling': measure_mask_scaling,
    'train_step': measure_train_step,
    'lovasz': measure_lovasz,
    'proposals': measure_proposals,
}


def scale_for(short_side: int) -> Tuple[int, int]:
    """mmdet's (long, short) Resize scale for a short side, 1333:800."""
    return (int(math.ceil(short_side * 1333 / 800)), short_side)


def run_worker(kind: str, kwargs: Dict[str, Any],
               threads: Optional[int] = None) -> Dict[str, Any]:
    if threads:
        torch.set_num_threads(threads)
    result = WORKERS[kind](**kwargs)
    result['torch_threads'] = torch.get_num_threads()
    return result
