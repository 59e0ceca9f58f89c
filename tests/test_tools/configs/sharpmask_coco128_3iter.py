# The CPU SharpMask stage cut like deepmask_coco128_3iter.py; load_from is
# set by the test (the checkpoint it trained with that config).
_base_ = '../../../configs/sharpmask/sharpmask_r18_coco128_proposals.py'
train_cfg = dict(max_iters=3, val_interval=3)
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(interval=3, max_keep_ckpts=1))
train_dataloader = dict(batch_size=4, num_workers=0,
                        persistent_workers=False)
val_dataloader = dict(dataset=dict(indices=2))
test_dataloader = val_dataloader
model = dict(test_cfg=dict(scales=[0.5, 1.0], num_proposals=20))
