# ISTR R-101-FPN 3x on COCO, official v1 (ISTR-R101-3x.yaml): only the
# backbone differs.
_base_ = './istr_r50_fpn_3x_coco.py'
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))
