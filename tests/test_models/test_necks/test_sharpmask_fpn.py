# Copyright (c) mmembed authors. All rights reserved.
"""SharpMaskFPN (FPN for detection + a mask-only refinement path): FPN's
levels are mmdet's FPN's, from the same keys; the mask map equals a hand
composition of the refinement steps; detach_fpn stops the mask loss at the
path; init; errors. Also the pieces that let detectors read the map
(EfficientNetLite's C1, MaskMapRoIExtractor, FPNLevelsRPNHead)."""
import pytest
import torch
from mmdet.models.dense_heads import RPNHead
from mmdet.models.necks import FPN
from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
from mmdet.registry import MODELS

from mmembed.models import (EfficientNetLite, FPNLevelsRPNHead,
                            MaskMapRoIExtractor, SharpMaskFPN)
from mmembed.models.necks import upsample_to

C1, FPN_IN = 16, [24, 40, 112, 320]  # Lite0's C1, C2..C5


def feats(batch=2, height=37, width=50, seed=0):
    """(C1, C2, .., C5) at strides 2 .. 32 with odd sizes (ceil halving)."""
    gen = torch.Generator().manual_seed(seed)
    out, h, w = [], height, width
    for chans in [C1] + FPN_IN:
        out.append(torch.randn(batch, chans, h, w, generator=gen))
        h, w = (h + 1) // 2, (w + 1) // 2
    return tuple(out)


def randomize_(module, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * 0.2)


FCOS_FPN = dict(start_level=1, add_extra_convs='on_output',
                relu_before_extra_convs=True)
MASK_RCNN_FPN = dict(start_level=0)


@pytest.mark.parametrize('fpn_kwargs', [FCOS_FPN, MASK_RCNN_FPN],
                         ids=['fcos', 'mask-rcnn'])
def test_detection_levels_are_mmdet_fpn_from_the_same_keys(fpn_kwargs):
    """An FPN state dict loads with only the path's keys missing, and the
    first num_outs outputs are that FPN's outputs, bit for bit."""
    fpn = FPN(FPN_IN, 32, num_outs=5, **fpn_kwargs)
    randomize_(fpn)
    neck = SharpMaskFPN(FPN_IN, 32, num_outs=5, stem_channels=C1,
                        **fpn_kwargs)
    result = neck.load_state_dict(fpn.state_dict(), strict=False)
    assert result.unexpected_keys == []
    assert result.missing_keys and all(
        k.startswith('mask_path.') for k in result.missing_keys)
    inputs = feats()
    with torch.no_grad():
        want = fpn(inputs[1:])
        got = neck(inputs)
    assert len(got) == 6
    for w, g in zip(want, got[:5]):
        torch.testing.assert_close(g, w, rtol=0, atol=0)


@pytest.mark.parametrize('fpn_kwargs,start,ups', [
    (FCOS_FPN, 0, 1),  # P3 -> x2 -> C2 -> x2 -> C1
    (FCOS_FPN, 1, 2),  # P4
    (MASK_RCNN_FPN, 0, 0),  # P2 is already on C2's grid
])
def test_mask_map_equals_hand_composed_path(fpn_kwargs, start, ups):
    neck = SharpMaskFPN(FPN_IN, 32, num_outs=5, stem_channels=C1,
                        mask_start_level=start, mask_channels=(24, 12),
                        mask_hidden_channels=(16, 8), mask_out_channels=20,
                        **fpn_kwargs)
    randomize_(neck, seed=1)
    inputs = feats()
    with torch.no_grad():
        outs = neck(inputs)
        level = fpn_kwargs['start_level'] + start
        m = outs[start]
        for finer in range(level - 1, -1, -1):
            m = upsample_to(m, inputs[1 + finer].shape[-2:], 'bilinear')
        refs = neck.mask_path['refinements']
        m = refs[0](inputs[1], m)  # C2
        m = upsample_to(m, inputs[0].shape[-2:], 'bilinear')
        m = refs[1](inputs[0], m)  # C1
        want = neck.mask_path['out_conv'](m)
    assert level == ups  # x2 steps from the start level to C2's grid
    assert outs[-1].shape == (2, 20, 37, 50)  # stride 2
    torch.testing.assert_close(outs[-1], want, rtol=0, atol=0)


def test_without_c1_the_map_is_at_stride_4():
    neck = SharpMaskFPN(FPN_IN, 32, num_outs=5, mask_channels=24,
                        mask_hidden_channels=16, **FCOS_FPN)
    outs = neck(feats()[1:])
    assert neck.mask_stride == 4 and len(neck.mask_path['refinements']) == 1
    assert outs[-1].shape == (2, 64, 19, 25)


@pytest.mark.parametrize('detach', [False, True])
def test_detach_fpn_keeps_the_mask_loss_off_fpn(detach):
    """A loss on the mask map reaches FPN's convs (and through them the
    detection levels) only without detach_fpn; the C2 / C1 skips still get
    gradients either way."""
    neck = SharpMaskFPN(FPN_IN, 32, num_outs=5, stem_channels=C1,
                        detach_fpn=detach, **FCOS_FPN)
    inputs = tuple(x.requires_grad_() for x in feats())
    neck(inputs)[-1].square().mean().backward()
    fpn_grads = [p.grad for n, p in neck.named_parameters()
                 if n.startswith(('lateral_convs', 'fpn_convs'))]
    reached = any(g is not None and g.abs().sum() > 0 for g in fpn_grads)
    assert reached is (not detach)
    assert (inputs[4].grad is not None) is (not detach)  # C5 only via FPN
    assert inputs[0].grad.abs().sum() > 0 and inputs[1].grad.abs().sum() > 0
    assert all(p.grad is not None for n, p in neck.named_parameters()
               if n.startswith('mask_path'))


def test_every_path_conv_is_xavier_uniform_after_init_weights():
    torch.manual_seed(0)
    neck = SharpMaskFPN(FPN_IN, 64, num_outs=5, stem_channels=C1,
                        **FCOS_FPN)
    neck.init_weights()
    convs = {n: m for n, m in neck.named_modules()
             if isinstance(m, torch.nn.Conv2d) and n.startswith('mask_path')}
    assert len(convs) == 2 * 5 + 1
    for name, conv in convs.items():
        weight = conv.weight.detach().double()
        k = conv.kernel_size[0] * conv.kernel_size[1]
        want_var = 2 / ((conv.in_channels + conv.out_channels) * k)
        tol = 6 * (0.8 / weight.numel())**0.5
        assert weight.abs().max() <= (3 * want_var)**0.5, name
        assert abs(weight.var().item() / want_var - 1) < tol, name
        assert not conv.bias.any(), name


@pytest.mark.parametrize('kwargs,inputs,match', [
    (dict(mask_start_level=3), None, 'mask_start_level 3'),
    (dict(mask_channels=(8, 8, 8)), None, 'mask_channels has 3 entries'),
    (dict(upsample_mode='bicubic'), None, 'upsample_mode'),
    (dict(), 4, 'got 4 backbone maps but expects 5'),
])
def test_bad_arguments_and_inputs_raise(kwargs, inputs, match):
    with pytest.raises(ValueError, match=match):
        neck = SharpMaskFPN(FPN_IN, 32, num_outs=5, stem_channels=C1,
                            **FCOS_FPN, **kwargs)
        neck(feats()[-inputs:] if inputs else feats())


def test_unknown_argument_is_named():
    with pytest.raises(TypeError, match='mask_chanels'):
        MODELS.build(dict(type='SharpMaskFPN', in_channels=FPN_IN,
                          out_channels=32, num_outs=5, mask_chanels=8))


def test_efficientnet_c1_is_the_stride2_block_output():
    """stem_out=True prepends the map after block group 0 (16 channels at
    stride 2, the input of stage 0's first stride-2 block); the other
    outputs are unchanged."""
    torch.manual_seed(0)
    plain = EfficientNetLite(out_indices=(0, 1, 2, 3))
    with_c1 = EfficientNetLite(out_indices=(0, 1, 2, 3), stem_out=True)
    with_c1.load_state_dict(plain.state_dict())
    plain.eval(), with_c1.eval()
    image = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        want = plain(image)
        got = with_c1(image)
        c1 = plain.stages[0][0](plain.stem(image))
    assert with_c1.out_channels == [16, 24, 40, 112, 320]
    assert len(got) == 5
    torch.testing.assert_close(got[0], c1)
    assert got[0].shape == (1, 16, 32, 48)
    for w, g in zip(want, got[1:]):
        torch.testing.assert_close(g, w)


def test_mask_map_roi_extractor_pools_the_chosen_output():
    roi_layer = dict(type='RoIAlign', output_size=7, sampling_ratio=0)
    ours = MaskMapRoIExtractor(roi_layer=roi_layer, out_channels=8,
                               featmap_strides=[2])
    ref = SingleRoIExtractor(roi_layer=roi_layer, out_channels=8,
                             featmap_strides=[2])
    gen = torch.Generator().manual_seed(0)
    outs = [torch.randn(2, 8, 40 // s, 48 // s, generator=gen)
            for s in (4, 8, 16, 2)]  # FPN levels, then the mask map
    rois = torch.tensor([[0, 2., 3., 30., 25.], [1, 10., 0., 47., 39.]])
    # StandardRoIHead slices x[:num_inputs] before calling the extractor
    sliced = tuple(outs[:ours.num_inputs])
    assert len(sliced) == 4
    torch.testing.assert_close(ours(sliced, rois), ref([outs[-1]], rois))
    with pytest.raises(ValueError, match='one neck output per'):
        MaskMapRoIExtractor(roi_layer=roi_layer, out_channels=8,
                            featmap_strides=[2, 4])
    with pytest.raises(ValueError, match='has 8 channels, out_channels'):
        MaskMapRoIExtractor(roi_layer=roi_layer, out_channels=16,
                            featmap_strides=[2])(sliced, rois)


def test_fpn_levels_rpn_head_reads_only_its_anchor_levels():
    cfg = dict(
        in_channels=8, feat_channels=8,
        anchor_generator=dict(type='AnchorGenerator', scales=[8],
                              ratios=[1.0], strides=[4, 8, 16]))
    torch.manual_seed(0)
    ours = FPNLevelsRPNHead(**cfg)
    ref = RPNHead(**cfg)
    ref.load_state_dict(ours.state_dict())
    levels = [torch.randn(1, 8, 32 // s, 32 // s) for s in (1, 2, 4)]
    mask_map = torch.randn(1, 8, 64, 64)
    got = ours(tuple(levels) + (mask_map, ))
    want = ref(tuple(levels))
    for g_list, w_list in zip(got, want):
        assert len(g_list) == 3
        for g, w in zip(g_list, w_list):
            torch.testing.assert_close(g, w)
    with pytest.raises(ValueError, match='3 strides but the neck gave'):
        ours(tuple(levels[:2]))
