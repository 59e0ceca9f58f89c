# Ablation of the fruits_nuts learning check (docs/istr.md#why-istr-trails-
# queryinst-here): ISTR with the GT masks encoded *deterministically* for the
# matching cost (MaskCodeCost), so a (query, GT) pair costs the same at every
# call; the code and dice losses keep ISTR's random soft targets.
_base_ = './istr_r18_fpn_fruits_nuts.py'
model = dict(roi_head=dict(match_random_soft_targets=False))
