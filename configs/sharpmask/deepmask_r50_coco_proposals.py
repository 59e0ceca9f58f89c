# DeepMask R-50, the first stage of the paper's SharpMask proposal model
# (facebookresearch/deepmask train.lua without -dm; specs/methods.md 4.1,
# 4.3): trunk + mask branch (56x56 -> 112) + score branch, trained on
# object-centred 192x192 patches, half mask samples and half score samples.
# Single GPU, batch 32, as the release. Then train
# sharpmask_r50_coco_proposals.py from this checkpoint.
_base_ = [
    '../_base_/datasets/coco_instance.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmembed'], allow_failed_imports=False)

model = dict(
    type='SharpMaskProposer',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        # the release normalises RGB in [0, 1] with these (x 255 here)
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=1),
    backbone=dict(
        type='ResNetWithStem',       # returns C1 too (SharpMask's last skip)
        depth=50,
        num_stages=3,                # the release drops layer4
        out_indices=(0, 1, 2),
        strides=(1, 2, 2),
        dilations=(1, 1, 1),
        frozen_stages=-1,
        # BNtoFixed: BN as fixed affine layers from the ImageNet model
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    deepmask_head=dict(
        type='DeepMaskHead',
        in_channels=1024,
        reduce_channels=128,
        code_channels=512,
        window_cells=10,
        mask_size=56,
        score_hidden=1024,
        dropout=0.5,
        mask_loss_weight=32.,        # the release's gradient x batch size
        score_loss_weight=1.),
    refine_head=None,                # plain DeepMask
    train_stage='deepmask',
    test_cfg=dict(
        # the release's pyramid 2^s, s = -2.5 ... 0.5 step 0.5
        scales=[2**(s / 2) for s in range(-5, 2)],
        num_proposals=1000,          # release np = 500; 1000 for AR@1000
        mask_thr=0.2,
        pad_value=0.5))

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='DeepMaskPatchSampler', input_size=160, label_size=112,
         hfreq=0.5),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'img_shape', 'patch_label',
                    'patch_has_mask')),
]
# full images: the model builds its own pyramid from the original size
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape')),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=4,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    _delete_=True,
    type='SegmentProposalMetric',
    # coco_instance.py's data_root written out: mmengine substitutes a base
    # variable only where it is the whole value (the base's data_root plus
    # this suffix used to leave mmengine's placeholder in the path)
    ann_file='data/coco/annotations/instances_val2017.json',
    proposal_nums=(10, 100, 1000))
test_evaluator = val_evaluator

# the release's epochs are 4000 batches; lr 1e-3 for epochs 1-50, 5e-4 to
# 120, 1e-4 after, at most 300 epochs; SGD momentum 0.9, weight decay 5e-4
iters_per_epoch = 4000
max_iters = 300 * iters_per_epoch
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters,
    val_interval=10 * iters_per_epoch)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=1e-3, momentum=0.9, weight_decay=5e-4))
# two steps of different factors (x0.5, then x0.2): two schedulers, which
# mmengine multiplies
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[50 * iters_per_epoch], gamma=0.5),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[120 * iters_per_epoch], gamma=0.2),
]
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval=10 * iters_per_epoch,
                    max_keep_ckpts=3),
    logger=dict(interval=100))
log_processor = dict(by_epoch=False)
