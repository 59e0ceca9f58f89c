# embedmask_r18_fpn_fruits_nuts.py with fp16 mixed precision on CUDA
# (mmengine AmpOptimWrapper: autocast + dynamic loss scaling); the FPN twin
# of configs/sharpmask/embedmask_r18_sharpmask_fruits_nuts_amp.py.
_base_ = './embedmask_r18_fpn_fruits_nuts.py'
optim_wrapper = dict(type='AmpOptimWrapper', dtype='float16',
                     loss_scale='dynamic')
