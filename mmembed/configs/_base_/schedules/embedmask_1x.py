# Copyright (c) mmembed authors. All rights reserved.
# The official EmbedMask / FCOS 1x schedule (SGD 0.01 for batch 16, bias lr
# x2 without decay, constant warm-up, steps at epochs 8 and 11): the
# pure-Python twin of configs/_base_/schedules/embedmask_1x.py.
from mmengine.optim import ConstantLR, MultiStepLR, OptimWrapper
from mmengine.runner import EpochBasedTrainLoop, TestLoop, ValLoop
from torch.optim import SGD

train_cfg = dict(type=EpochBasedTrainLoop, max_epochs=12, val_interval=1)
val_cfg = dict(type=ValLoop)
test_cfg = dict(type=TestLoop)
param_scheduler = [
    dict(type=ConstantLR, factor=1.0 / 3, by_epoch=False, begin=0, end=500),
    dict(
        type=MultiStepLR,
        begin=0,
        end=12,
        by_epoch=True,
        milestones=[8, 11],
        gamma=0.1)
]
optim_wrapper = dict(
    type=OptimWrapper,
    optimizer=dict(type=SGD, lr=0.01, momentum=0.9, weight_decay=0.0001),
    paramwise_cfg=dict(bias_lr_mult=2.0, bias_decay_mult=0.0),
    # maskrcnn-benchmark does not clip gradients
    clip_grad=None)
# the lr above is for 16 images per iteration (8 GPUs x 2)
auto_scale_lr = dict(enable=False, base_batch_size=16)
