# Candidate (docs/istr.md#small-data-keys): the recommended small-data ISTR
# with one classification FC instead of three; nothing else changes.
# (the keys file comes with the base)
_base_ = './istr_v2_lite0_fpn_recommended_fruits_nuts_finetune.py'
model = dict(roi_head=dict(bbox_head={{_base_.istr_one_cls_fc_bbox_head}}))
