# Copyright (c) mmembed authors. All rights reserved.
"""2-process gloo DDP against 1 process with the same total batch, for
every model in MODEL_SPECS: the first-iteration loss terms, averaged over
the ranks, equal the single-process ones (relative tolerance 1e-4).

Each rank holds one of the two images. The heads normalise by counts
passed through ``reduce_mean``, so the mean over ranks of each term is the
single-process term. BatchNorm layers run in eval mode (running statistics)
in both settings: per-rank batch statistics over 1 image legitimately
differ from statistics over 2 (SyncBN is the fix for that, not tested here).
"""
import os
import pickle
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from robustness_helpers import MODEL_IDS, MODEL_SPECS

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _losses(spec, image_ids) -> dict:
    from mmdet.testing import demo_mm_inputs
    from robustness_helpers import build_model
    model = build_model(spec).train()
    if spec.family == 'istr':
        # ISTR's codec draws random soft targets from each process's own
        # generator, so ranks draw other numbers than one process does for
        # the same images; the reduction over ranks is what is tested here
        model.roi_head.mask_codec.random_soft_targets = False
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
    if spec.family == 'proposal':
        # two training patches, the same in every process (seeded)
        from robustness_helpers import proposal_patch_batch
        packed = proposal_patch_batch(spec)
    else:
        packed = demo_mm_inputs(2, [[3, 64, 64], [3, 64, 64]],
                                num_items=[3, 2], num_classes=2,
                                with_mask=True)
    packed = dict(inputs=[packed['inputs'][i] for i in image_ids],
                  data_samples=[packed['data_samples'][i] for i in image_ids])
    data = model.data_preprocessor(packed, True)
    losses = model(**data, mode='loss')
    return {k: float(sum(v) if isinstance(v, (list, tuple)) else v.sum())
            for k, v in losses.items() if 'loss' in k}


def _worker(rank: int, spec, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=2)
    try:
        from mmembed.utils import register_all_modules
        register_all_modules(init_default_scope=True)
        losses = _losses(spec, [rank])
        with open(os.path.join(out_dir, f'rank{rank}.pkl'), 'wb') as f:
            pickle.dump(losses, f)
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize('spec', MODEL_SPECS, ids=MODEL_IDS)
def test_two_process_first_losses_equal_one_process(tmp_path, spec):
    want = _losses(spec, [0, 1])
    mp.spawn(_worker, args=(spec, _free_port(), str(tmp_path)), nprocs=2,
             join=True)
    ranks = []
    for rank in (0, 1):
        with open(tmp_path / f'rank{rank}.pkl', 'rb') as f:
            ranks.append(pickle.load(f))
    assert set(ranks[0]) == set(want)
    for name, value in want.items():
        got = (ranks[0][name] + ranks[1][name]) / 2
        assert got == pytest.approx(value, rel=1e-4, abs=1e-6), (
            name, got, value, ranks)
