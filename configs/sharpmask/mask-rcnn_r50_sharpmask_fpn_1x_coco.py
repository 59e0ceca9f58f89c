# mmdet's Mask R-CNN R-50 1x with SharpMaskFPN: the RPN and the box RoI
# extractor read FPN's P2-P6 exactly as mmdet's config; the mask RoI
# extractor pools the stride-2 refined mask map (the last neck output,
# MaskMapRoIExtractor) into mmdet's unchanged mask head (its input width
# follows the map's 128 channels). FPNLevelsRPNHead is mmdet's RPNHead on its
# 5 anchor levels only. Schedule and everything else: mmdet's config.
_base_ = [
    'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    '../_base_/sharpmask/r50_sharpmask_fpn_parts.py',
]
custom_imports = dict(imports=['mmembed'], allow_failed_imports=False)
model = dict(
    backbone={{_base_.sm_backbone}},
    neck={{_base_.sm_neck}},
    rpn_head=dict(type='FPNLevelsRPNHead'),
    roi_head=dict(
        mask_roi_extractor=dict(
            type='MaskMapRoIExtractor',
            in_levels=(-1, ),
            out_channels={{_base_.sm_mask_channels}},
            featmap_strides=[{{_base_.sm_mask_stride}}]),
        mask_head=dict(in_channels={{_base_.sm_mask_channels}})))
# mmembed's checked dataset and metric (configs/_base_/datasets/coco_instance.py)
train_dataloader = dict(dataset=dict(type='CheckedCocoDataset'))
val_dataloader = dict(dataset=dict(type='CheckedCocoDataset'))
test_dataloader = val_dataloader
val_evaluator = dict(type='CheckedCocoMetric')
test_evaluator = val_evaluator
