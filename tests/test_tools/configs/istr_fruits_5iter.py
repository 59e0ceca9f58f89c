# ISTR small fruits_nuts config cut to 5 training iterations (tests); the
# test fits the codec first and passes its path with --cfg-options.
_base_ = '../../../configs/istr/istr_r18_fpn_fruits_nuts.py'
train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=5, val_interval=5)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=5)
]
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(by_epoch=False, interval=5, max_keep_ckpts=1))
train_dataloader = dict(num_workers=0, persistent_workers=False)
val_dataloader = dict(num_workers=0, persistent_workers=False)
test_dataloader = val_dataloader
log_processor = dict(by_epoch=False)
