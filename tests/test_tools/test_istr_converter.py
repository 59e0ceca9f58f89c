# Copyright (c) mmembed authors. All rights reserved.
"""The official ISTR v1 converter on a state dict built here with the key
names and shapes of hujiecpp/ISTR @967c901 (specs/methods.md 3.1, 3.6),
loaded into the R-50 3x model with strict=True."""
import importlib.util
import os.path as osp
from collections import OrderedDict

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config

from mmembed.testing import get_config_root, get_repo_root

CONFIG = 'istr/istr_r50_fpn_3x_coco.py'
C, DYN, STAGES = 256, 64, 6


def load_converter():
    path = osp.join(get_repo_root(), 'tools', 'model_converters',
                    'istr_to_mmembed.py')
    spec = importlib.util.spec_from_file_location('istr_converter', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def official_r50_v1_state_dict(num_classes=80, queries=300, code_dim=60):
    """Names and shapes of the official v1 R-50 checkpoint, written out from
    the spec (detectron2 ResNet with FrozenBN inside each conv, FPN P2-P5,
    6 RCNNHeads). Large tensors are constant (cheap), small ones random."""
    gen = torch.Generator().manual_seed(0)
    sd = OrderedDict()

    def rand(*shape):
        return torch.randn(*shape, generator=gen)

    def conv_norm(prefix, out_ch, in_ch, k):
        sd[f'{prefix}.weight'] = rand(out_ch, in_ch, k, k)
        for name in ('weight', 'bias', 'running_mean', 'running_var'):
            sd[f'{prefix}.norm.{name}'] = rand(out_ch)

    bb = 'backbone.bottom_up'
    conv_norm(f'{bb}.stem.conv1', 64, 3, 7)
    in_ch = 64
    for res, (blocks, width) in zip(
            range(2, 6), [(3, 64), (4, 128), (6, 256), (3, 512)]):
        for block in range(blocks):
            p = f'{bb}.res{res}.{block}'
            if block == 0:
                conv_norm(f'{p}.shortcut', width * 4, in_ch, 1)
            conv_norm(f'{p}.conv1', width, in_ch, 1)
            conv_norm(f'{p}.conv2', width, width, 3)
            conv_norm(f'{p}.conv3', width * 4, width, 1)
            in_ch = width * 4
    for level, ch in zip(range(2, 6), (256, 512, 1024, 2048)):
        sd[f'backbone.fpn_lateral{level}.weight'] = rand(C, ch, 1, 1)
        sd[f'backbone.fpn_lateral{level}.bias'] = rand(C)
        sd[f'backbone.fpn_output{level}.weight'] = rand(C, C, 3, 3)
        sd[f'backbone.fpn_output{level}.bias'] = rand(C)
    sd['pos_embeddings.weight'] = rand(queries, C)
    sd['init_proposal_boxes.weight'] = rand(queries, 4)
    sd['mask_encoding.components'] = rand(code_dim, 28 * 28)
    sd['mask_encoding.explained_variances'] = rand(code_dim).abs() + 0.1
    sd['mask_encoding.means'] = rand(28 * 28)

    def linear(prefix, out_f, in_f, bias=True):
        sd[f'{prefix}.weight'] = rand(out_f, in_f)
        if bias:
            sd[f'{prefix}.bias'] = rand(out_f)

    def norm(prefix, ch):
        sd[f'{prefix}.weight'] = rand(ch)
        sd[f'{prefix}.bias'] = rand(ch)

    for stage in range(STAGES):
        h = f'head.head_series.{stage}'
        sd[f'{h}.self_attn.in_proj_weight'] = rand(3 * C, C)
        sd[f'{h}.self_attn.in_proj_bias'] = rand(3 * C)
        linear(f'{h}.self_attn.out_proj', C, C)
        sd[f'{h}.inst_interact.dynamic_layer.weight'] = torch.full(
            (2 * C * DYN, C), float(stage))
        sd[f'{h}.inst_interact.dynamic_layer.bias'] = rand(2 * C * DYN)
        norm(f'{h}.inst_interact.norm1', DYN)
        norm(f'{h}.inst_interact.norm2', C)
        sd[f'{h}.inst_interact.out_layer.weight'] = torch.full(
            (C, C * 49), float(stage))
        sd[f'{h}.inst_interact.out_layer.bias'] = rand(C)
        norm(f'{h}.inst_interact.norm3', C)
        linear(f'{h}.linear1', 2048, C)
        linear(f'{h}.linear2', C, 2048)
        for i in (1, 2, 3):
            norm(f'{h}.norm{i}', C)
        for module in ('cls_module', 'reg_module', 'mask_module'):
            for i in range(3):
                linear(f'{h}.{module}.{3 * i}', C, C, bias=False)
                norm(f'{h}.{module}.{3 * i + 1}', C)
        linear(f'{h}.class_logits', num_classes, C)
        linear(f'{h}.bboxes_delta', 4, C)
        linear(f'{h}.mask_logits', code_dim, C)
    return sd


@pytest.fixture(scope='module')
def converted():
    official = official_r50_v1_state_dict()
    sd, unmapped = load_converter().convert(
        OrderedDict((f'module.{k}', v) for k, v in official.items()))
    return official, sd, unmapped


def build_r50():
    cfg = Config.fromfile(osp.join(get_config_root(), CONFIG))
    cfg.model.backbone.init_cfg = None
    cfg.model.roi_head.mask_codec.codec_file = None
    return MODELS.build(cfg.model)


def test_every_key_maps_and_the_model_loads_strictly(converted):
    official, sd, unmapped = converted
    assert unmapped == []
    model = build_r50()
    model.load_state_dict(sd, strict=True)
    roi = model.roi_head

    def o(key):
        return official[key]

    torch.testing.assert_close(roi.mask_codec.components,
                               o('mask_encoding.components'))
    torch.testing.assert_close(model.rpn_head.init_proposal_features.weight,
                               o('pos_embeddings.weight'))
    head = roi.bbox_head[3]
    h = 'head.head_series.3'
    assert head.instance_interactive_conv.dynamic_layer.weight[0, 0] == 3
    torch.testing.assert_close(head.attention.attn.in_proj_weight,
                               o(f'{h}.self_attn.in_proj_weight'))
    torch.testing.assert_close(head.ffn.layers[0][0].weight,
                               o(f'{h}.linear1.weight'))
    torch.testing.assert_close(head.ffn_norm.bias, o(f'{h}.norm3.bias'))
    torch.testing.assert_close(head.instance_interactive_conv.norm_in.weight,
                               o(f'{h}.inst_interact.norm1.weight'))
    torch.testing.assert_close(head.mask_fcs[6].weight,
                               o(f'{h}.mask_module.6.weight'))
    torch.testing.assert_close(head.reg_fcs[4].bias,
                               o(f'{h}.reg_module.4.bias'))
    torch.testing.assert_close(head.fc_mask.bias, o(f'{h}.mask_logits.bias'))
    torch.testing.assert_close(
        model.backbone.layer3[0].downsample[1].running_var,
        o('backbone.bottom_up.res4.0.shortcut.norm.running_var'))
    torch.testing.assert_close(
        model.backbone.layer4[2].conv3.weight,
        o('backbone.bottom_up.res5.2.conv3.weight'))
    torch.testing.assert_close(model.neck.fpn_convs[0].conv.weight,
                               o('backbone.fpn_output2.weight'))


def test_cli_reports_unmapped_keys(tmp_path, capsys):
    official = OrderedDict(
        (k, v) for k, v in official_r50_v1_state_dict().items()
        if not k.startswith('head.'))
    official['head.head_series.0.extra.weight'] = torch.zeros(3)
    src = tmp_path / 'official.pth'
    torch.save(dict(model=official), src)
    dst = tmp_path / 'ours.pth'
    code = load_converter().main([str(src), str(dst)])
    out = capsys.readouterr().out
    assert code == 1 and not dst.exists()
    assert 'unmapped official key: head.head_series.0.extra.weight' in out


def official_r50_v2_state_dict(with_pca=True, code_dim=256, mask_size=112):
    """The v2 checkpoint (hujiecpp/ISTR@1dac079 ``head.py``): v1's names, but
    ``mask_module`` is Conv(C, C, 4, 2, 1), BN, ELU, Conv(C, C, 4, 2, 1),
    BN, ELU, Conv(C, D, 7) (keys 0, 1, 3, 4, 6), no ``mask_logits``, and the
    PCA codec of 112 x 112 masks (ISTR-PCA) or none (ISTR-DCT)."""
    sd = OrderedDict(
        (k, v) for k, v in official_r50_v1_state_dict().items()
        if '.mask_module.' not in k and '.mask_logits.' not in k
        and not k.startswith('mask_encoding.'))
    gen = torch.Generator().manual_seed(1)
    for stage in range(STAGES):
        h = f'head.head_series.{stage}.mask_module'
        for idx, out_ch, k in ((0, C, 4), (3, C, 4), (6, code_dim, 7)):
            sd[f'{h}.{idx}.weight'] = torch.randn(out_ch, C, k, k,
                                                  generator=gen)
            sd[f'{h}.{idx}.bias'] = torch.randn(out_ch, generator=gen)
        for idx in (1, 4):
            for name in ('weight', 'bias', 'running_mean'):
                sd[f'{h}.{idx}.{name}'] = torch.randn(C, generator=gen)
            sd[f'{h}.{idx}.running_var'] = torch.rand(C, generator=gen) + .5
            sd[f'{h}.{idx}.num_batches_tracked'] = torch.tensor(7)
    if with_pca:
        sd['mask_encoding.components'] = torch.full(
            (code_dim, mask_size**2), 0.5)
        sd['mask_encoding.explained_variances'] = torch.rand(
            code_dim, generator=gen) + 0.1
        sd['mask_encoding.means'] = torch.zeros(mask_size**2)
    return sd


def build_v2(config):
    cfg = Config.fromfile(osp.join(get_config_root(), config))
    cfg.model.backbone.init_cfg = None
    if 'codec_file' in cfg.model.roi_head.mask_codec:
        cfg.model.roi_head.mask_codec.codec_file = None
    return MODELS.build(cfg.model)


@pytest.mark.parametrize('config,with_pca', [
    ('istr/istr_v2_r50_fpn_3x_coco.py', True),
    ('istr/istr_v2_r50_fpn_dct_3x_coco.py', False),
])
def test_v2_checkpoints_load_strictly(config, with_pca):
    converter = load_converter()
    official = official_r50_v2_state_dict(with_pca=with_pca)
    assert converter.detect_version(official) == 'v2'
    sd, unmapped = converter.convert(official)
    assert unmapped == []
    model = build_v2(config)
    model.load_state_dict(sd, strict=True)
    head = model.roi_head.bbox_head[4]
    h = 'head.head_series.4.mask_module'
    torch.testing.assert_close(head.mask_convs[0].weight,
                               official[f'{h}.0.weight'])
    torch.testing.assert_close(head.mask_convs[4].running_var,
                               official[f'{h}.4.running_var'])
    torch.testing.assert_close(head.mask_convs[6].bias,
                               official[f'{h}.6.bias'])
    if with_pca:
        torch.testing.assert_close(model.roi_head.mask_codec.components,
                                   official['mask_encoding.components'])
    # forcing the wrong version leaves the conv keys under the MLP's names,
    # which a strict load refuses
    wrong, _ = converter.convert(official, version='v1')
    with pytest.raises(RuntimeError, match='mask_fcs'):
        model.load_state_dict(wrong, strict=True)


def test_v2_ae_keys_are_reported_unmapped():
    official = official_r50_v2_state_dict(with_pca=False)
    official['mask_E.fc.weight'] = torch.zeros(2, 2)
    official['head.head_series.0.ret_roi_layer_1.conv.0.weight'] = \
        torch.zeros(2, 2, 3, 3)
    _, unmapped = load_converter().convert(official)
    assert sorted(unmapped) == [
        'head.head_series.0.ret_roi_layer_1.conv.0.weight', 'mask_E.fc.weight'
    ]
