# Copyright (c) mmembed authors. All rights reserved.
"""SharpMaskNeck: refinement module vs a conv-by-conv formula, padding and
upsampling vs independent references, the whole top-down path vs a hand
composition, shapes at every stride (odd sizes, vs mmdet's FPN), the
release's channel layout, gradients, and the errors."""
from typing import List

import pytest
import torch
import torch.nn.functional as F
from mmdet.models.backbones import ResNet
from mmdet.models.necks import FPN
from torch import Tensor

from mmembed.models.necks import RefinementModule, SharpMaskNeck, upsample_to


def symmetric_pad(x: Tensor, pad: int) -> Tensor:
    """Matlab 'symmetric' padding (Torch7 SpatialSymmetricPadding, the
    release's padding): the border is mirrored *including* the edge pixel,
    cba|abcd|dcb. Written with flips, independent of F.pad."""
    x = torch.cat([x[..., :pad].flip(-1), x, x[..., -pad:].flip(-1)], -1)
    return torch.cat(
        [x[..., :pad, :].flip(-2), x, x[..., -pad:, :].flip(-2)], -2)


def conv_ref(x: Tensor, conv_module) -> Tensor:
    """One 3x3 conv of the release: symmetric pad 1, then a valid conv."""
    conv = conv_module.conv
    return F.conv2d(symmetric_pad(x, 1), conv.weight, conv.bias)


def nearest_up_ref(x: Tensor, size) -> Tensor:
    """x2 nearest (Torch7 SpatialUpSamplingNearest(2)), cropped to size."""
    up = x.repeat_interleave(2, dim=-1).repeat_interleave(2, dim=-2)
    return up[..., :size[0], :size[1]]


def randomize_(module: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial weights and biases (the default biases are zero)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * 0.3)


def test_replicate_equals_symmetric_padding_at_pad_1_only():
    x = torch.randn(2, 3, 5, 7, dtype=torch.float64)
    torch.testing.assert_close(
        F.pad(x, (1, 1, 1, 1), mode='replicate'), symmetric_pad(x, 1),
        rtol=0, atol=0)
    # neither reflect (the PyTorch port) at pad 1 nor replicate at pad 2 is
    # the release's padding
    assert not torch.equal(F.pad(x, (1, 1, 1, 1), mode='reflect'),
                           symmetric_pad(x, 1))
    assert not torch.equal(F.pad(x, (2, 2, 2, 2), mode='replicate'),
                           symmetric_pad(x, 2))


def test_refinement_module_equals_conv_by_conv_formula():
    """ReLU(h(F) + v(M)), h = conv(ReLU(conv(ReLU(conv(F))))), v =
    conv(ReLU(conv(M))), every conv after a symmetric pad of 1; widths all
    different (C 5, h 7, k_in 6, k 4, k_out 3), H != W, odd."""
    module = RefinementModule(5, 7, 6, 4, 3).double()
    randomize_(module)
    skip = torch.randn(2, 5, 9, 11, dtype=torch.float64)
    mask_feat = torch.randn(2, 6, 9, 11, dtype=torch.float64)
    h1, h2, h3 = module.horizontal
    v1, v2 = module.vertical
    horizontal = conv_ref(
        F.relu(conv_ref(F.relu(conv_ref(skip, h1)), h2)), h3)
    vertical = conv_ref(F.relu(conv_ref(mask_feat, v1)), v2)
    want = F.relu(horizontal + vertical)
    got = module(skip, mask_feat)
    assert got.shape == (2, 3, 9, 11)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    assert (got == 0).any() and (got > 0).any()  # the ReLU is exercised


@pytest.mark.parametrize('size', [(8, 10), (7, 9), (8, 9)])
def test_upsample_to_nearest_equals_pixel_copies(size):
    x = torch.randn(1, 2, 4, 5)
    torch.testing.assert_close(
        upsample_to(x, size, 'nearest'), nearest_up_ref(x, size), rtol=0,
        atol=0)


def test_upsample_to_pads_one_missing_row_by_replication():
    x = torch.randn(1, 2, 4, 5)
    got = upsample_to(x, (9, 11), 'nearest')
    assert got.shape == (1, 2, 9, 11)
    torch.testing.assert_close(got[..., 8, :], got[..., 7, :])
    torch.testing.assert_close(got[..., :, 10], got[..., :, 9])


def test_upsample_to_bilinear_is_exact_x2_grid_then_crop():
    """Bilinear on the x2 grid (align_corners=False), not a resize to the
    odd size, so coarse cell j stays centred on fine cells 2j, 2j + 1."""
    x = torch.randn(1, 2, 4, 5)
    full = F.interpolate(x, scale_factor=2, mode='bilinear',
                         align_corners=False)
    torch.testing.assert_close(
        upsample_to(x, (7, 9), 'bilinear'), full[..., :7, :9])
    assert not torch.allclose(
        upsample_to(x, (7, 9), 'bilinear'),
        F.interpolate(x, size=(7, 9), mode='bilinear', align_corners=False))


def test_upsample_to_rejects_non_x2_stages():
    with pytest.raises(ValueError, match='stride of 2'):
        upsample_to(torch.randn(1, 1, 4, 4), (12, 8), 'nearest')


def stages(sizes, channels, dtype=torch.float64) -> List[Tensor]:
    gen = torch.Generator().manual_seed(1)
    return [
        torch.randn(2, c, h, w, generator=gen, dtype=dtype)
        for c, (h, w) in zip(channels, sizes)
    ]


def test_faithful_neck_equals_hand_composed_release_path():
    """start conv on the top stage, then per step refinement with the skip
    of that stage and x2 nearest; outputs are the FPN-style convs of every
    R and the finest R upsampled ('upsampled' = the release's last x2)."""
    channels = [3, 5, 6, 7]
    neck = SharpMaskNeck(
        channels, 4, num_outs=4, start_level=0,
        mask_channels=(8, 6, 5, 3, 2), hidden_channels=(5, 4, 3, 2),
        finest_out='upsampled').double()
    randomize_(neck)
    # odd sizes: C2 25 x 33 -> C5 4 x 5, as ResNet on a 97 x 131 image
    inputs = stages([(25, 33), (13, 17), (7, 9), (4, 5)], channels)
    mask_feat = conv_ref(inputs[3], neck.start_conv)
    refined = {}
    for step, level in enumerate([3, 2, 1, 0]):
        if step:
            mask_feat = nearest_up_ref(mask_feat, inputs[level].shape[-2:])
        ref = neck.refinements[step]
        h1, h2, h3 = ref.horizontal
        v1, v2 = ref.vertical
        horizontal = conv_ref(
            F.relu(conv_ref(F.relu(conv_ref(inputs[level], h1)), h2)), h3)
        vertical = conv_ref(F.relu(conv_ref(mask_feat, v1)), v2)
        mask_feat = F.relu(horizontal + vertical)
        refined[level] = mask_feat

    def out_ref(x, conv_module):  # zero-padded, as FPN's output convs
        conv = conv_module.conv
        return F.conv2d(x, conv.weight, conv.bias, padding=1)

    want = [out_ref(refined[lvl], neck.out_convs[lvl]) for lvl in range(4)]
    want.append(
        out_ref(nearest_up_ref(refined[0], (50, 66)), neck.finest_conv))
    got = neck(inputs)
    assert len(got) == len(want) == 5
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-10)


def test_release_channel_layout():
    """With the release's skip stages (C1..C4 of ResNet-50: 64, 256, 512,
    1024 channels) the default widths give SharpMask.lua's convs:
    neth (C -> h -> k -> k/2) and netv (k -> k -> k/2) with k 32, 16, 8, 4
    and h 64, 64, 64, 32."""
    neck = SharpMaskNeck([64, 256, 512, 1024], 8, num_outs=4)
    want_h = [(1024, 64, 32, 16), (512, 64, 16, 8), (256, 64, 8, 4),
              (64, 32, 4, 2)]
    for ref, (c, h, k, k_out) in zip(neck.refinements, want_h):
        widths = [m.conv.in_channels for m in ref.horizontal]
        assert widths + [ref.horizontal[-1].conv.out_channels] == \
            [c, h, k, k_out]
        assert [m.conv.in_channels for m in ref.vertical] == [k, k]
        assert ref.vertical[-1].conv.out_channels == k_out
        for m in [*ref.horizontal, *ref.vertical]:
            assert m.conv.kernel_size == (3, 3) and m.conv.padding == (0, 0)
            assert type(m.padding_layer).__name__ == 'ReplicationPad2d'
    assert neck.start_conv.conv.out_channels == 32


@pytest.mark.parametrize('finest_out', [None, 'input', 'upsampled'])
@pytest.mark.parametrize('extra', [False, 'on_input', 'on_output'])
def test_shapes_at_every_stride_match_fpn(finest_out, extra):
    """ResNet-18 on an odd 97 x 131 image: the FPN-style outputs have FPN's
    shapes at every stride (so any head built for FPN fits), and the finest
    map is at stride 4 ('input') or 2 ('upsampled')."""
    torch.manual_seed(0)
    backbone = ResNet(depth=18, out_indices=(0, 1, 2, 3))
    backbone.eval()  # mmdet's ResNet.train() returns None, so no chaining
    with torch.no_grad():
        feats = backbone(torch.rand(1, 3, 97, 131))
    kwargs = dict(in_channels=[64, 128, 256, 512], out_channels=8,
                  start_level=1, num_outs=5, add_extra_convs=extra,
                  relu_before_extra_convs=True)
    fpn = FPN(**kwargs)
    neck = SharpMaskNeck(**kwargs, mask_channels=16, hidden_channels=8,
                         finest_out=finest_out, upsample_mode='bilinear')
    with torch.no_grad():
        want = [o.shape for o in fpn(feats)]
        got = [o.shape for o in neck(feats)]
    c2_height, c2_width = feats[0].shape[-2:]
    assert (c2_height, c2_width) == (25, 33)
    if finest_out == 'input':
        want.append(torch.Size([1, 8, 25, 33]))
    elif finest_out == 'upsampled':
        want.append(torch.Size([1, 8, 50, 66]))
    assert got == want


def test_mask_rcnn_layout_outputs_p2_to_p6():
    neck = SharpMaskNeck([4, 5, 6, 7], 3, num_outs=5, mask_channels=6,
                         hidden_channels=4)
    outs = neck(stages([(16, 24), (8, 12), (4, 6), (2, 3)], [4, 5, 6, 7],
                       torch.float32))
    assert [o.shape[-2:] for o in outs] == [(16, 24), (8, 12), (4, 6),
                                           (2, 3), (1, 2)]


@pytest.mark.parametrize('mode', ['faithful', 'detector'])
def test_every_parameter_gets_a_gradient(mode):
    kwargs = dict(mask_channels=16, hidden_channels=8,
                  upsample_mode='bilinear', add_extra_convs='on_output',
                  norm_cfg=dict(type='GN', num_groups=4)) \
        if mode == 'detector' else {}
    torch.manual_seed(0)
    neck = SharpMaskNeck([4, 5, 6, 7], 8, num_outs=5, start_level=1,
                         finest_out='input', **kwargs)
    neck.init_weights()
    inputs = stages([(17, 23), (9, 12), (5, 6), (3, 3)], [4, 5, 6, 7],
                    torch.float32)
    outs = neck(inputs)
    sum((o**2).mean() for o in outs).backward()
    names = [name for name, _ in neck.named_parameters()]
    assert any('refinements.3' in n for n in names)  # runs down to C2
    for name, param in neck.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_without_finest_out_the_path_stops_at_start_level():
    """Stage 0 below start_level would get no gradient (DDP error), so the
    path has 3 steps and the faithful widths need 4 entries."""
    neck = SharpMaskNeck([4, 5, 6, 7], 8, num_outs=3, start_level=1,
                         mask_channels=(32, 16, 8, 4),
                         hidden_channels=(64, 64, 64))
    assert len(neck.refinements) == 3
    with pytest.raises(ValueError, match='mask_channels has 5 entries'):
        SharpMaskNeck([4, 5, 6, 7], 8, num_outs=3, start_level=1)


@pytest.mark.parametrize('kwargs, match', [
    (dict(padding_mode='symmetric'), 'padding_mode'),
    (dict(upsample_mode='bicubic'), 'upsample_mode'),
    (dict(finest_out='stride2'), 'finest_out'),
    (dict(add_extra_convs='on_lateral'), 'on_lateral'),
    (dict(start_level=4), 'start_level'),
    (dict(num_outs=3), 'num_outs 3'),
    (dict(hidden_channels=(8, 8)), 'hidden_channels has 2 entries'),
])
def test_bad_arguments_raise(kwargs, match):
    args = dict(in_channels=[4, 5, 6, 7], out_channels=8, num_outs=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        SharpMaskNeck(**args)


def test_wrong_number_of_stages_raises():
    neck = SharpMaskNeck([4, 5, 6, 7], 8, num_outs=4)
    with pytest.raises(ValueError, match='out_indices'):
        neck(stages([(8, 8), (4, 4), (2, 2)], [4, 5, 6]))


def test_five_stages_refine_down_to_the_stem():
    """With the stem (C1, stride 2) as stage 0 the path has the release's
    last skip too; 'upsampled' then reaches stride 1."""
    channels = [3, 4, 5, 6, 7]
    sizes = [(49, 65), (25, 33), (13, 17), (7, 9), (4, 5)]  # 97 x 129
    neck = SharpMaskNeck(channels, 4, num_outs=4, start_level=1,
                         mask_channels=(32, 16, 8, 4, 2, 1),
                         hidden_channels=(8, 8, 8, 8, 4),
                         finest_out='upsampled')
    outs = neck(stages(sizes, channels, torch.float32))
    assert [o.shape[-2:] for o in outs] == sizes[1:] + [(98, 130)]
    assert neck.refinements[-1].horizontal[0].conv.in_channels == 3


R18 = [64, 128, 256, 512]
R50 = [256, 512, 1024, 2048]


@pytest.mark.parametrize('in_channels', [R18, R50], ids=['r18', 'r50'])
@pytest.mark.parametrize('layout', [
    dict(mask_channels=128, hidden_channels=128, finest_out='input',
         add_extra_convs='on_output'),
    dict(mask_channels=64, hidden_channels=32, finest_out='upsampled',
         add_extra_convs='on_input'),
    dict(allow_narrow_levels=True, finest_out='input'),  # release widths
], ids=['detector', 'narrow-upsampled', 'release'])
def test_every_conv_is_xavier_uniform_after_init_weights(in_channels, layout):
    """Every conv, start_conv and finest_conv included (mmengine used to
    re-run ConvModule's Kaiming fan_out init on those two direct children),
    is Xavier-uniform: |w| <= sqrt(6 / (fan_in + fan_out)), variance
    2 / (fan_in + fan_out) within 6 standard errors, zero bias."""
    torch.manual_seed(0)
    out_channels = 256 if layout.get('mask_channels') else 8
    neck = SharpMaskNeck(in_channels, out_channels, num_outs=5,
                         start_level=1, upsample_mode='bilinear', **layout)
    neck.init_weights()
    convs = {name: m for name, m in neck.named_modules()
             if isinstance(m, torch.nn.Conv2d)}
    assert 'start_conv.conv' in convs and 'finest_conv.conv' in convs
    assert len(convs) == 1 + 5 * 4 + 3 + (
        2 if layout.get('add_extra_convs') else 0) + 1
    for name, conv in convs.items():
        weight = conv.weight.detach().double()
        fan_in = conv.in_channels * 9
        fan_out = conv.out_channels * 9
        want_var = 2 / (fan_in + fan_out)
        # a uniform's sample variance has relative std sqrt(0.8 / n)
        tol = 6 * (0.8 / weight.numel())**0.5
        assert weight.abs().max() <= (3 * want_var)**0.5, name
        assert abs(weight.var().item() / want_var - 1) < tol, \
            (name, weight.var().item() / want_var)
        assert not conv.bias.any(), name


def test_release_widths_starve_a_detector_and_the_neck_says_so():
    """The release's widths under an R-50 detector (P3-P7 + the stride-4
    map, 256 channels): P3-P5 would come from 4, 8 and 16 channels and the
    appended map from 2; the neck refuses and names them."""
    kwargs = dict(in_channels=R50, out_channels=256, num_outs=5,
                  start_level=1, finest_out='input')
    with pytest.raises(ValueError) as info:
        SharpMaskNeck(**kwargs)
    message = str(info.value)
    for part in ('mask_channels (32, 16, 8, 4, 2)',
                 'stage 1 (output 0) from 4 channels (at most 36 of 256',
                 'stage 2 (output 1) from 8 channels',
                 'stage 3 (output 2) from 16 channels',
                 "finest_out='input' map from 2 channels", '= 29 channels',
                 'allow_narrow_levels=True'):
        assert part in message, part
    # why: with allow_narrow_levels the neck builds, and P3's 256 channels
    # span exactly 9 x 4 = 36 dimensions over the pixels
    torch.manual_seed(0)
    neck = SharpMaskNeck(**kwargs, allow_narrow_levels=True).double()
    neck.init_weights()
    inputs = stages([(40, 40), (20, 20), (10, 10), (5, 5)], R50)
    with torch.no_grad():
        p3 = neck(inputs)[0]
    assert p3.shape == (2, 256, 20, 20)
    pixels = (p3 - neck.out_convs[0].conv.bias[:, None, None]).permute(
        1, 0, 2, 3).flatten(1)  # (256, 800): the conv's linear part
    assert torch.linalg.matrix_rank(pixels) == 36


def test_width_limit_is_ceil_of_out_channels_over_9():
    """29 x 9 = 261 >= 256 builds, 28 x 9 = 252 < 256 is refused; the
    shipped detector widths (128 for 256 outputs, 64 for 64) build."""
    kwargs = dict(in_channels=R18, out_channels=256, num_outs=5,
                  start_level=1, hidden_channels=8, finest_out='input')
    SharpMaskNeck(**kwargs, mask_channels=29)
    with pytest.raises(ValueError, match=r'from 28 channels \(at most 252'):
        SharpMaskNeck(**kwargs, mask_channels=28)
    # only the finest map too narrow: the message names it alone
    with pytest.raises(ValueError) as info:
        SharpMaskNeck(**kwargs, mask_channels=(64, 64, 64, 64, 16))
    assert "finest_out='input' map from 16" in str(info.value)
    assert 'stage 1' not in str(info.value)
    SharpMaskNeck(**dict(kwargs, out_channels=64), mask_channels=64)
    SharpMaskNeck(**kwargs, mask_channels=128)
