# BlendMask R-50-FPN 1x on COCO, released-code behaviour (AdelaiDet
# configs/BlendMask/R_50_1x.yaml: 39.9 box / 35.8 mask AP on val2017).
# AdelaiDet trains even its 1x model multi-scale: shorter side drawn from
# 640..800 (step 32, random choice), longer side <= 1333; test 800 / 1333.
# 90k iterations at batch 16 = 12 epochs, steps 60k / 80k = epochs 8 / 11.
# 8 GPUs x 2 images: `tools/dist_train.sh configs/blendmask/blendmask_r50_fpn_1x_coco.py 8`
_base_ = [
    '../_base_/models/blendmask_r50_fpn.py',
    '../_base_/datasets/coco_instance.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmembed'], allow_failed_imports=False)

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='RandomChoiceResize',
        scales=[(1333, 640), (1333, 672), (1333, 704), (1333, 736),
                (1333, 768), (1333, 800)],
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# detectron2 solver of Base-BlendMask: SGD lr 0.01 for 16 images, momentum
# 0.9, weight decay 1e-4 (none on norm layers), linear warm-up from 0.001
# over 1000 iterations, no gradient clipping
max_epochs = 12
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=1000),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[8, 11],
        gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001),
    paramwise_cfg=dict(norm_decay_mult=0.0),
    clip_grad=None)
auto_scale_lr = dict(enable=False, base_batch_size=16)
