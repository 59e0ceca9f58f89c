# EmbedMask R-101-FPN, multi-scale training, 36 epochs, paper behaviour: the
# paper's headline model (37.7 mask AP on test-dev).
# `tools/dist_train.sh configs/embedmask/embedmask_r101_3x.py 8`
_base_ = './embedmask_r50_fpn_ms-3x_coco.py'
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='open-mmlab://detectron2/resnet101_caffe')))
