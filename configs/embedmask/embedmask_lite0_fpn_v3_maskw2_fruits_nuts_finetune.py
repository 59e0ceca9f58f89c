# Ablation of the fine-tune learning check (docs/embedmask.md): the
# released-code (v3) model of embedmask_lite0_fpn_v3_fruits_nuts_finetune.py
# with the Lovász mask loss weighted 2.0 instead of 0.5.
_base_ = './embedmask_lite0_fpn_v3_fruits_nuts_finetune.py'
model = dict(mask_head=dict(loss_mask=dict(loss_weight=2.0)))
