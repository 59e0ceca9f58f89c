# Ablation of embedmask_lite0_sharpmask_fpn_fruits_nuts_finetune.py: the
# refinement path starts from a detached P3, so the mask loss reaches
# neither FPN's convs nor the detection levels through it (it still trains
# FPN through the proposal embeddings of the box head, as with FPN alone).
_base_ = './embedmask_lite0_sharpmask_fpn_fruits_nuts_finetune.py'
model = dict(neck=dict(detach_fpn=True))
