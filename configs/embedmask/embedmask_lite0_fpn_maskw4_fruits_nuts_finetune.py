# Ablation of the fine-tune learning check (docs/embedmask.md): the paper
# model of embedmask_lite0_fpn_fruits_nuts_finetune.py with the Lovász mask
# loss weighted 4.0 instead of the paper's 0.5 (does the trend of weight 2.0
# go on?).
_base_ = './embedmask_lite0_fpn_fruits_nuts_finetune.py'
model = dict(mask_head=dict(loss_mask=dict(loss_weight=4.0)))
