# Leave-one-out ablation of the recommended small-data ISTR
# (docs/istr.md#small-data-keys): everything of
# istr_v2_lite0_fpn_recommended_dynamic_fusion_dense_code_dct64_fruits_nuts_finetune.py
# except the query start, which is ISTR's image-conditioned one again (the
# pooled P2-P5 vector added to the learned embeddings at full scale).
_base_ = './istr_v2_lite0_fpn_recommended_dynamic_fusion_dense_code_dct64_fruits_nuts_finetune.py'
model = dict(rpn_head=dict(image_feat_scale=1.0))
