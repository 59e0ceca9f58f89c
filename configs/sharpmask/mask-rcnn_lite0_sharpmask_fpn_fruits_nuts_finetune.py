# mmdet's Mask R-CNN fine-tuned from ImageNet Lite0 on fruits_nuts with
# SharpMaskFPN: the RPN and the box RoI extractor read FPN's P2-P6, as in the
# twin configs/mask_rcnn/mask-rcnn_lite0_fpn_fruits_nuts_finetune.py; the
# mask RoI extractor pools the stride-2 refined mask map (the last neck
# output). FPNLevelsRPNHead is mmdet's RPNHead reading only its 5 anchor
# levels; mmdet's mask head is unchanged.
_base_ = [
    '../mask_rcnn/mask-rcnn_lite0_fpn_fruits_nuts_finetune.py',
    '../_base_/sharpmask/lite0_sharpmask_fpn_parts.py',
]
model = dict(
    backbone={{_base_.sm_backbone}},
    neck={{_base_.sm_neck}},
    rpn_head=dict(type='FPNLevelsRPNHead'),
    roi_head=dict(
        mask_roi_extractor=dict(
            type='MaskMapRoIExtractor',
            in_levels=(-1, ),
            featmap_strides=[{{_base_.sm_mask_stride}}])))
