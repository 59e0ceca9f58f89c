# EmbedMask R-50-FPN, multi-scale training, 3x (36 epochs), paper behaviour.
# Official `embed_mask_R101_ms_3x.yaml` trains at MIN_SIZE_TRAIN (640, 800):
# maskrcnn-benchmark draws one of the two scales (random.choice), so this is
# exactly two scales, not a range. 270k iterations with steps at 210k / 250k
# = epochs 28 and 33 of 36 at batch 16.
_base_ = './embedmask_r50_fpn_1x_coco.py'

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='RandomChoiceResize',
        scales=[(1333, 640), (1333, 800)],
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(
        type='ConstantLR', factor=1.0 / 3, by_epoch=False, begin=0, end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[28, 33],
        gamma=0.1)
]
