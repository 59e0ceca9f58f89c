# embedmask_r18_sharpmask_fpn_fruits_nuts.py with fp16 mixed precision on CUDA
# (mmengine AmpOptimWrapper: autocast + dynamic loss scaling). Checked
# on the CPU with bf16 by tests/robustness/test_amp.py; see
# docs/reliability.md.
_base_ = './embedmask_r18_sharpmask_fpn_fruits_nuts.py'
optim_wrapper = dict(type='AmpOptimWrapper', dtype='float16',
                     loss_scale='dynamic')
