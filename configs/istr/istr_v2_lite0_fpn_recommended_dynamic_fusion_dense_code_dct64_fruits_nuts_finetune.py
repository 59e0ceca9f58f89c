# Candidate (docs/istr.md#small-data-keys): the dense code head
# (mask_code_head='dense') with the 64-d DCT code of the DCT-64 candidate.
_base_ = './istr_v2_lite0_fpn_recommended_dynamic_fusion_dense_code_fruits_nuts_finetune.py'
model = dict(roi_head=dict(mask_codec=dict(code_dim=64)))
