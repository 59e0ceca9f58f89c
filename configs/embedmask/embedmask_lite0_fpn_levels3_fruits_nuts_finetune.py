# Ablation of the fine-tune learning check (docs/embedmask.md): the paper
# model of embedmask_lite0_fpn_fruits_nuts_finetune.py with a pixel branch
# that sums P3-P5 (one conv per level, the coarser ones upsampled) before its
# tower, as CondInst's mask branch does; mmembed's own key (pixel_levels).
_base_ = './embedmask_lite0_fpn_fruits_nuts_finetune.py'
model = dict(mask_head=dict(pixel_levels=3))
