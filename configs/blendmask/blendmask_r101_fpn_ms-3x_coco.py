# BlendMask R-101-FPN, multi-scale, 3x (AdelaiDet R_101_3x.yaml: 44.8 box /
# 39.5 mask AP): only the backbone differs from the R-50 3x config.
_base_ = './blendmask_r50_fpn_ms-3x_coco.py'
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='open-mmlab://detectron2/resnet101_caffe')))
