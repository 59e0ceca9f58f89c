# cpu_adamw_12e.py (AdamW, linear warm-up, cosine decay) stretched to 80
# epochs, for the from-scratch fruits_nuts learning check. Every entry that
# depends on the epoch count is restated; mmengine does not re-evaluate the
# base's expressions when `max_epochs` changes.
_base_ = './cpu_adamw_12e.py'
max_epochs = 80
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs,
        eta_min_ratio=0.05,
        by_epoch=True,
        begin=0,
        end=max_epochs,
        convert_to_iter_based=True)
]
