# Ablation (docs/istr.md#small-data-keys): ISTR v2 fine-tuned with matching
# on classes and boxes (istr_v2_lite0_fpn_box_matching_...) plus ReLU in the
# stage heads instead of ELU; nothing else changes.
# (the keys file comes with the base)
_base_ = './istr_v2_lite0_fpn_box_matching_fruits_nuts_finetune.py'
model = dict(roi_head=dict(bbox_head={{_base_.istr_relu_bbox_head}}))
