# The paper's second training stage on a converged FPN model: load the
# stage-1 EmbedMask (embedmask/embedmask_lite0_fpn_fruits_nuts_finetune.py,
# trained first) into its SharpMaskFPN twin, where every key but the
# refinement path's exists, and train only the path and the mask head (the
# head now reads the refined map); backbone, FPN and box head stay as loaded.
# FreezeExceptHook checks the load: a frozen module missing from load_from
# stops the run, naming it (docs/sharpmask.md#two-stage-training).
_base_ = './embedmask_lite0_sharpmask_fpn_fruits_nuts_finetune.py'
load_from = 'work_dirs/embedmask_lite0_fpn_fruits_nuts_finetune/epoch_40.pth'
custom_hooks = [
    dict(type='FreezeExceptHook', trainable=['neck.mask_path', 'mask_head'])
]
