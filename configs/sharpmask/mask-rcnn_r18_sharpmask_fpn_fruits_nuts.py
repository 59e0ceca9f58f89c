# The scratch-protocol twin of mask-rcnn_lite0_sharpmask_fpn_fruits_nuts_finetune.py:
# mask_rcnn/mask-rcnn_r18_fpn_fruits_nuts.py (R-18 from scratch, all 18
# photos) with SharpMaskFPN; mask RoIs pooled from the stride-2 refined map.
_base_ = [
    '../mask_rcnn/mask-rcnn_r18_fpn_fruits_nuts.py',
    '../_base_/sharpmask/r18_sharpmask_fpn_parts.py',
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
