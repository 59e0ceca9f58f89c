# The CPU-sized DeepMask of deepmask_r50_coco_proposals.py: ResNet-18 from
# scratch (no ImageNet weights can be downloaded here), trained on coco128's
# 126 annotated images and evaluated (class-agnostic segment AR) on the same
# 128, AdamW for a short schedule. A toy: it shows the pipeline learns, it
# is not the paper's number (docs/sharpmask.md#the-proposal-model).
_base_ = ['./deepmask_r50_coco_proposals.py']
data_root = '../shared/data/coco128/'
ann_file = 'annotations/instances_train2017.json'

model = dict(
    backbone=dict(
        depth=18,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        init_cfg=None),
    deepmask_head=dict(in_channels=256),
    test_cfg=dict(num_proposals=1000))

train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(data_root=data_root, ann_file=ann_file,
                 data_prefix=dict(img='train2017/')))
val_dataloader = dict(
    num_workers=1,
    persistent_workers=False,
    dataset=dict(data_root=data_root, ann_file=ann_file,
                 data_prefix=dict(img='train2017/')))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + ann_file)
test_evaluator = val_evaluator

max_iters = 400
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=35., norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', T_max=max_iters, eta_min_ratio=0.05,
         by_epoch=False, begin=0, end=max_iters),
]
default_hooks = dict(
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1),
    logger=dict(interval=20))
