# The CPU-sized SharpMask stage: sharpmask_r50_coco_proposals.py (the
# refinement trained alone on the frozen DeepMask, 160x160 mask samples,
# plain SGD as the release: no momentum, no weight decay) on the ResNet-18
# DeepMask of deepmask_r18_coco128_proposals.py and coco128 (the R-18 /
# coco128 parts shared with it), at a CPU-sized number of iterations, then
# evaluated as class-agnostic segment AR.
_base_ = [
    './sharpmask_r50_coco_proposals.py',
    '../_base_/sharpmask/r18_coco128_proposal_parts.py',
]
data_root = {{_base_.coco128_data_root}}

model = dict(
    backbone={{_base_.r18_backbone}},
    deepmask_head={{_base_.r18_deepmask_head}},
    # the release's refinement widths (from the R-50 config) on R-18 skips
    refine_head=dict(skip_channels={{_base_.r18_skip_channels}}))

train_dataloader = {{_base_.coco128_train_dataloader}}
val_dataloader = {{_base_.coco128_val_dataloader}}
test_dataloader = val_dataloader
val_evaluator = {{_base_.coco128_evaluator}}
test_evaluator = val_evaluator

load_from = 'work_dirs/deepmask_r18_coco128_proposals/iter_400.pth'
max_iters = 300
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = []  # constant lr 1e-3 (the R-50 steps come at 200k)
default_hooks = dict(
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1),
    logger=dict(interval=20))
