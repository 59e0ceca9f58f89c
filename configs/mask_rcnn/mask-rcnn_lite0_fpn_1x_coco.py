# mmdet's Mask R-CNN on EfficientNet-Lite0 (benchmarks).
# EfficientNet-Lite0 (ImageNet weights from the installed package) + FPN at
# a 640-pixel shorter side, for low-power devices; everything else, the
# schedule included, is mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py.
# Parts: configs/_base_/lite0/lite0_coco_parts.py.
_base_ = [
    'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    '../_base_/lite0/lite0_coco_parts.py',
]
model = dict(
    data_preprocessor={{_base_.lite0_data_preprocessor}},
    backbone={{_base_.lite0_backbone}},
    neck=dict(in_channels={{_base_.lite0_in_channels}}))
custom_imports = dict(imports=['mmembed'], allow_failed_imports=False)
# mmembed's checked dataset and metric (configs/_base_/datasets/coco_instance.py)
train_dataloader = dict(
    dataset=dict(
        type='CheckedCocoDataset',
        pipeline={{_base_.lite0_train_pipeline}}))
val_dataloader = dict(
    dataset=dict(
        type='CheckedCocoDataset', pipeline={{_base_.lite0_test_pipeline}}))
test_dataloader = val_dataloader
val_evaluator = dict(type='CheckedCocoMetric')
test_evaluator = val_evaluator
