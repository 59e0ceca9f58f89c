# Ablation (docs/istr.md#small-data-keys): ISTR v2 fine-tuned with matching
# on classes and boxes (istr_v2_lite0_fpn_box_matching_...) plus the queries
# started from the learned embeddings alone; nothing else changes.
# (the keys file comes with the base)
_base_ = './istr_v2_lite0_fpn_box_matching_fruits_nuts_finetune.py'
model = dict(rpn_head={{_base_.istr_embedding_start_rpn_head}})
