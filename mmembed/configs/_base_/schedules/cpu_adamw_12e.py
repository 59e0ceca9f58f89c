# Copyright (c) mmembed authors. All rights reserved.
# Short from-scratch CPU schedule (AdamW, linear warm-up, cosine decay): the
# pure-Python twin of configs/_base_/schedules/cpu_adamw_12e.py.
from mmengine.optim import CosineAnnealingLR, LinearLR, OptimWrapper
from mmengine.runner import EpochBasedTrainLoop, TestLoop, ValLoop
from torch.optim import AdamW

max_epochs = 12
train_cfg = dict(
    type=EpochBasedTrainLoop, max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type=ValLoop)
test_cfg = dict(type=TestLoop)
param_scheduler = [
    dict(type=LinearLR, start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(
        type=CosineAnnealingLR,
        T_max=max_epochs,
        eta_min_ratio=0.05,
        by_epoch=True,
        begin=0,
        end=max_epochs,
        convert_to_iter_based=True)
]
optim_wrapper = dict(
    type=OptimWrapper,
    optimizer=dict(type=AdamW, lr=2e-3, weight_decay=0.05),
    clip_grad=dict(max_norm=10, norm_type=2))
auto_scale_lr = dict(enable=False, base_batch_size=8)
