# ISTR R-50-FPN 3x on COCO, official v1 (ISTR-R50-3x.yaml). Fit the PCA codec
# once before training (about an hour on COCO train2017 on one CPU core):
#   python tools/misc/fit_mask_codec.py \
#       data/coco/annotations/instances_train2017.json \
#       --out data/coco/istr_pca60_m28.npz
# The codec is then stored in every checkpoint: testing needs no npz.
_base_ = [
    '../_base_/models/istr_r50_fpn.py',
    '../_base_/datasets/coco_instance.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmembed'], allow_failed_imports=False)
model = dict(
    roi_head=dict(
        mask_codec=dict(codec_file='data/coco/istr_pca60_m28.npz')))

# Official dataset_mapper.py: flip; multi-scale shortest edge 480-800 (max
# 1333); with probability 0.5 a DETR-style crop first (resize to 400/500/600,
# random 70 % x 70 % crop).
ms_scales = [(1333, s) for s in range(480, 801, 32)]
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[[
            dict(type='RandomChoiceResize', scales=ms_scales, keep_ratio=True)
        ],
                    [
                        dict(
                            type='RandomChoiceResize',
                            scales=[(1333, 400), (1333, 500), (1333, 600)],
                            keep_ratio=True),
                        dict(
                            type='RandomCrop',
                            crop_type='relative',
                            crop_size=(0.7, 0.7),
                            allow_negative_crop=True),
                        dict(
                            type='RandomChoiceResize',
                            scales=ms_scales,
                            keep_ratio=True)
                    ]]),
    dict(type='PackDetInputs')
]
# Empty-annotation images are filtered out (official too).
train_dataloader = dict(
    batch_size=2,
    dataset=dict(
        pipeline=train_pipeline,
        filter_cfg=dict(filter_empty_gt=True, min_size=32)))

# 270k iterations at batch 16 (36 epochs), steps at 210k / 250k (epochs 28
# and 33), 1000 warm-up iterations from 0.01; AdamW lr 2.5e-5, wd 1e-4,
# full-model gradient clip 1.0.
max_epochs = 36
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=1000),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[28, 33],
        gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2.5e-5, weight_decay=1e-4),
    clip_grad=dict(max_norm=1.0, norm_type=2))
# the lr above is for 8 GPUs x 2 images
auto_scale_lr = dict(enable=False, base_batch_size=16)
randomness = dict(seed=40244023)  # the official seed
