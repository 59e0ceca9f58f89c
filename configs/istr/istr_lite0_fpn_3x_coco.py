# ISTR (v1) on EfficientNet-Lite0, COCO 3x.
# EfficientNet-Lite0 (ImageNet weights from the installed package) + FPN at
# a 640-pixel shorter side, for low-power devices; everything else, the
# schedule included, is ./istr_r50_fpn_3x_coco.py.
# Parts: configs/_base_/lite0/lite0_coco_parts.py.
_base_ = [
    './istr_r50_fpn_3x_coco.py',
    '../_base_/lite0/lite0_coco_parts.py',
]
model = dict(
    data_preprocessor={{_base_.lite0_data_preprocessor}},
    backbone={{_base_.lite0_backbone}},
    neck=dict(in_channels={{_base_.lite0_in_channels}}))
train_dataloader = dict(
    dataset=dict(pipeline={{_base_.lite0_train_pipeline}}))
val_dataloader = dict(dataset=dict(pipeline={{_base_.lite0_test_pipeline}}))
test_dataloader = val_dataloader
