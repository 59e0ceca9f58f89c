# The CPU-sized DeepMask of deepmask_r50_coco_proposals.py: ResNet-18 from
# scratch (no ImageNet weights can be downloaded here), trained on coco128's
# 126 annotated images and evaluated (class-agnostic segment AR) on the same
# 128, AdamW for a short schedule. A toy: it shows the pipeline learns, it
# is not the paper's number (docs/sharpmask.md#the-proposal-model). The
# R-18 / coco128 parts are shared with sharpmask_r18_coco128_proposals.py.
_base_ = [
    './deepmask_r50_coco_proposals.py',
    '../_base_/sharpmask/r18_coco128_proposal_parts.py',
]
data_root = {{_base_.coco128_data_root}}

model = dict(
    backbone={{_base_.r18_backbone}},
    deepmask_head={{_base_.r18_deepmask_head}})

train_dataloader = {{_base_.coco128_train_dataloader}}
val_dataloader = {{_base_.coco128_val_dataloader}}
test_dataloader = val_dataloader
val_evaluator = {{_base_.coco128_evaluator}}
test_evaluator = val_evaluator

max_iters = 400
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=35., norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', T_max=max_iters, eta_min_ratio=0.05,
         by_epoch=False, begin=0, end=max_iters),
]
default_hooks = dict(
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1),
    logger=dict(interval=20))
