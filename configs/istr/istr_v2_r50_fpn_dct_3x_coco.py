# ISTR v2 with the DCT encoder (ISTR-DCT-R50-3x.yaml): 256 zig-zag DCT
# frequencies of the 112 x 112 box mask, nothing to fit. Decoded masks are
# clamped to [0, 1] for the paste, not for the dice loss (as v2).
_base_ = './istr_v2_r50_fpn_3x_coco.py'
model = dict(
    roi_head=dict(
        mask_codec=dict(
            _delete_=True, type='DCTMaskCodec', code_dim=256,
            mask_size=112)))
