# Ablation of the fine-tune learning check (docs/embedmask.md): the paper
# model of embedmask_lite0_fpn_fruits_nuts_finetune.py plus mmembed's own
# auxiliary dice term on the same mask probabilities, targets, weights and
# supervised region as the Lovász hinge (EmbedMaskHead.loss_mask_aux).
# Neither the paper nor the official code has it.
_base_ = './embedmask_lite0_fpn_fruits_nuts_finetune.py'
model = dict(
    mask_head=dict(
        loss_mask_aux=dict(type='RegionDiceLoss', loss_weight=1.0)))
