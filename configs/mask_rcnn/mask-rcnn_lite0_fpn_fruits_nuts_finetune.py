# mmdet's Mask R-CNN fine-tuned from ImageNet Lite0 on fruits_nuts: the FPN
# twin of configs/sharpmask/mask-rcnn_lite0_sharpmask_fpn_fruits_nuts_finetune.py.
# Fine-tune protocol (configs/_base_/finetune/lite0_fruits_nuts_split.py):
# ImageNet Lite0, 12 training / 6 held-out fruits_nuts photos; write the
# split first with: python tools/misc/split_coco.py --fruits-nuts
_base_ = [
    './mask-rcnn_r18_fpn_fruits_nuts.py',
    '../_base_/finetune/lite0_fruits_nuts_split.py',
]
model = dict(
    backbone={{_base_.ft_backbone}},
    neck=dict(in_channels={{_base_.ft_in_channels}}))
train_dataloader = dict(dataset={{_base_.ft_train_dataset}})
val_dataloader = dict(dataset={{_base_.ft_heldout_dataset}})
test_dataloader = val_dataloader
val_evaluator = {{_base_.ft_heldout_evaluator}}
test_evaluator = val_evaluator
train_cfg = {{_base_.ft_train_cfg}}
param_scheduler = {{_base_.ft_param_scheduler}}
default_hooks = {{_base_.ft_default_hooks}}
