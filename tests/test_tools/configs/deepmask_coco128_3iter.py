# The CPU DeepMask proposal config cut to 3 iterations on 4-patch batches,
# evaluated on 2 coco128 images with a 2-scale pyramid (tests).
_base_ = '../../../configs/sharpmask/deepmask_r18_coco128_proposals.py'
train_cfg = dict(max_iters=3, val_interval=3)
param_scheduler = []
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(interval=3, max_keep_ckpts=1))
train_dataloader = dict(batch_size=4, num_workers=0,
                        persistent_workers=False)
val_dataloader = dict(dataset=dict(indices=2))
test_dataloader = val_dataloader
model = dict(test_cfg=dict(scales=[0.5, 1.0], num_proposals=20))
