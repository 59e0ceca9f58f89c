# BlendMask R-50-FPN, multi-scale, 3x (AdelaiDet R_50_3x.yaml: 42.7 box /
# 37.8 mask AP): the 1x recipe with 270k iterations and steps at 210k / 250k
# = 36 epochs, steps at epochs 28 / 33.
_base_ = './blendmask_r50_fpn_1x_coco.py'
max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=1000),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[28, 33],
        gamma=0.1)
]
