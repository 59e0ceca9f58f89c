# Candidate (docs/istr.md#small-data-keys): the recommended small-data ISTR
# whose conv mask branch reads its RoI features through QueryInst's
# instance-interactive conv of the query (mask_query_fusion='dynamic');
# nothing else changes.
# (the keys file comes with the base)
_base_ = './istr_v2_lite0_fpn_recommended_fruits_nuts_finetune.py'
model = dict(
    roi_head=dict(bbox_head={{_base_.istr_dynamic_fusion_bbox_head}}))
