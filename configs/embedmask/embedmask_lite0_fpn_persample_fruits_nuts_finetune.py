# Ablation of the fine-tune learning check (docs/embedmask.md): the paper
# model of embedmask_lite0_fpn_fruits_nuts_finetune.py with a mask loss for
# every selected proposal sample instead of one for their mean
# (sample_reduction='none', mmembed's own key): inference reads single
# locations, so this trains what inference uses.
_base_ = './embedmask_lite0_fpn_fruits_nuts_finetune.py'
model = dict(mask_head=dict(sample_reduction='none'))
