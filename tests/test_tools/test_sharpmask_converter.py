# Copyright (c) mmembed authors. All rights reserved.
"""The Torch7 SharpMask release converter on a release object built here
with the module nesting of facebookresearch/deepmask (``SharpMask.lua``,
``DeepMask.lua``, ``modelUtils.lua``; fb.resnet.torch ResNet-50 blocks,
``updatePadding``'s Sequential{SymmetricPadding, conv} wrappers,
``BNtoFixed``'s fixed affines), as ``torchfile.load`` returns it
(specs/methods.md 4.1, 4.2, 4.5). The converted weights are checked against
the source arrays and, numerically, against a small Torch7 interpreter run
on the same object."""
import copy
import importlib.util
import os.path as osp
import struct
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmembed.testing import get_repo_root

torchfile = pytest.importorskip('torchfile')
TorchObject = torchfile.TorchObject
Table = torchfile.hashable_uniq_dict

MODEL_CFG = dict(
    type='SharpMaskProposer',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=1),
    backbone=dict(
        type='ResNetWithStem',
        depth=50,
        num_stages=3,
        out_indices=(0, 1, 2),
        strides=(1, 2, 2),
        dilations=(1, 1, 1),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        style='pytorch',
        init_cfg=None),
    deepmask_head=dict(type='DeepMaskHead', in_channels=1024),
    refine_head=dict(type='SharpMaskRefinementHead'),
    train_stage='sharpmask')


def load_converter():
    path = osp.join(get_repo_root(), 'tools', 'model_converters',
                    'sharpmask_t7_to_mmembed.py')
    spec = importlib.util.spec_from_file_location('sharpmask_converter',
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_model():
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    import mmembed  # noqa: F401
    register_all_modules()
    return MODELS.build(copy.deepcopy(MODEL_CFG)).eval()


# ------------------------------------------------- the fake release object
class FakeRelease:
    """Torch objects as torchfile returns them: bytes type names, bytes
    field names, numpy arrays, Lua arrays as lists, other tables as
    ``hashable_uniq_dict``. ``norm`` is what stands for ResNet's BNs:
    'affine' (BNtoFixed, the release) or 'bn'."""

    def __init__(self, seed=0, norm='affine'):
        self.rng = np.random.default_rng(seed)
        self.norm_type = norm

    def obj(self, typename, **fields):
        table = Table({k.encode(): v for k, v in fields.items()})
        table[b'output'] = np.empty(0, np.float32)
        table[b'gradInput'] = np.empty(0, np.float32)
        return TorchObject(typename.encode(), table)

    def randn(self, *shape, scale=1.):
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)

    # modules
    def seq(self, *modules):
        return self.obj('nn.Sequential', modules=list(modules))

    def conv(self, nin, nout, k, stride=1, bias=True, pad=0):
        fields = dict(
            nInputPlane=nin, nOutputPlane=nout, kW=k, kH=k, dW=stride,
            dH=stride, padW=pad, padH=pad, groups=1,
            weight=self.randn(nout, nin, k, k, scale=(nin * k * k)**-.5))
        if bias:
            fields['bias'] = self.randn(nout, scale=.1)
        return self.obj('cudnn.SpatialConvolution', **fields)

    def linear(self, nin, nout):
        return self.obj(
            'nn.Linear',
            weight=self.randn(nout, nin, scale=nin**-.5),
            bias=self.randn(nout, scale=.1))

    def norm(self, n, typename=None):
        if self.norm_type == 'bn':
            return self.obj(
                'cudnn.SpatialBatchNormalization', eps=1e-5, momentum=.1,
                affine=True, weight=1 + self.randn(n, scale=.1),
                bias=self.randn(n, scale=.1),
                running_mean=self.randn(n, scale=.1),
                running_var=self.rng.uniform(.5, 2., n).astype(np.float32))
        return self.obj(
            typename or 'inn.ConstAffine', inplace=True,
            a=1 + self.randn(n, scale=.1), b=self.randn(n, scale=.1))

    def relu(self):
        return self.obj('cudnn.ReLU', inplace=True)

    def sym_pad(self, p):
        return self.obj('nn.SpatialSymmetricPadding', pad_l=p, pad_r=p,
                        pad_t=p, pad_b=p)

    def zero_pad(self, p):
        return self.obj('nn.SpatialZeroPadding', pad_l=p, pad_r=p,
                        pad_t=p, pad_b=p)

    def view(self, *size):
        return self.obj('nn.View', size=np.array(size, np.int64),
                        numElements=int(np.prod(size[1:])), numInputDims=-1)

    def identity(self):
        return self.obj('nn.Identity')

    # fb.resnet.torch, after updatePadding and BNtoFixed
    def bottleneck(self, nin, n, stride):
        residual = self.seq(
            self.conv(nin, n, 1, bias=False), self.norm(n), self.relu(),
            self.seq(self.sym_pad(1), self.conv(n, n, 3, stride,
                                                bias=False)),
            self.norm(n), self.relu(),
            self.conv(n, 4 * n, 1, bias=False), self.norm(4 * n))
        if nin != 4 * n:
            shortcut = self.seq(self.conv(nin, 4 * n, 1, stride, bias=False),
                                self.norm(4 * n))
        else:
            shortcut = self.identity()
        return self.seq(
            self.obj('nn.ConcatTable', modules=[residual, shortcut]),
            self.obj('nn.CAddTable', inplace=True), self.relu())

    def layer(self, nin, n, count, stride):
        blocks = [self.bottleneck(nin, n, stride)]
        blocks += [self.bottleneck(4 * n, n, 1) for _ in range(count - 1)]
        return self.seq(*blocks)

    def release(self):
        trunk = self.seq(
            # conv1 with a (nonzero) bias: folded into bn1
            self.seq(self.sym_pad(3), self.conv(3, 64, 7, 2)),
            self.norm(64, 'nn.SpatialConstDiagonal'), self.relu(),
            self.obj('cudnn.SpatialMaxPooling', kW=3, kH=3, dW=2, dH=2,
                     padW=1, padH=1),
            self.layer(64, 64, 3, 1), self.layer(256, 128, 4, 2),
            self.layer(512, 256, 6, 2),
            self.zero_pad(-1),
            self.conv(1024, 128, 1), self.relu(),
            self.view(32, 128 * 10 * 10),
            self.linear(128 * 10 * 10, 512))
        score = self.seq(
            self.obj('nn.Dropout', p=.5), self.linear(512, 1024),
            self.obj('nn.Threshold', threshold=0, val=1e-6),
            self.obj('nn.Dropout', p=.5), self.linear(1024, 1))
        mask = self.seq(
            self.seq(self.linear(512, 56 * 56)),
            self.seq(self.obj('nn.Copy'), self.view(32, 56, 56),
                     self.obj('nn.SpatialReSamplingEx', owidth=112,
                              oheight=112, mode=b'bilinear'),
                     self.view(32, 112 * 112), self.obj('nn.Copy')))
        # SharpMask.lua: createVertical / createHorizontal / refinement
        netvs = Table({0: self.seq(self.linear(512, 10 * 10 * 32),
                                   self.view(32, 32, 10, 10))})
        neths = []
        for i, (nhu1, nhu2, crop) in enumerate(
                [(1024, 64, 0), (512, 64, -2), (256, 64, -4),
                 (64, 32, -8)], 1):
            k = 32 // 2**(i - 1)
            modules = [self.zero_pad(crop)] if crop else []
            modules += [
                self.sym_pad(1), self.conv(nhu1, nhu2, 3), self.relu(),
                self.sym_pad(1), self.conv(nhu2, k, 3), self.relu(),
                self.sym_pad(1), self.conv(k, k // 2, 3)]
            neths.append(self.seq(*modules))
            netvs[i] = self.seq(self.sym_pad(1), self.conv(k, k, 3),
                                self.relu(), self.sym_pad(1),
                                self.conv(k, k // 2, 3))
        refs = Table({0: netvs[0]})
        for i in range(1, 5):
            refs[i] = self.seq(
                self.obj('nn.ParallelTable', modules=[neths[i - 1],
                                                      netvs[i]]),
                self.obj('nn.CAddTable', inplace=False), self.relu(),
                self.obj('nn.SpatialUpSamplingNearest', scale_factor=2))
        refs[4]._obj[b'modules'] += [
            self.sym_pad(1), self.conv(2, 1, 3), self.view(32, 160 * 160)]
        model = self.obj(
            'nn.SharpMask', km=32, ks=32, fSz=10, skpos=[8, 6, 5, 3],
            inps=[], trunk=trunk, scoreBranch=score, maskBranchDM=mask,
            refs=refs, neths=neths, netvs=netvs)
        config = Table({b'km': 32, b'ks': 32, b'iSz': 160, b'oSz': 56,
                        b'gSz': 160, b'batch': 32, b'lr': 1e-3,
                        b'dm': b'pretrained/deepmask'})
        return Table({b'model': model, b'config': config})


def field(module, name):
    return module._obj[name.encode()]


def kids(module):
    return field(module, 'modules')


# ------------------------------------------- a small Torch7 interpreter
def run(module, x):
    """Forward of the fake release's modules, in float64, as Torch7
    computes them (SpatialSymmetricPadding as Matlab's 'symmetric')."""
    kind = module.torch_typename().decode().rsplit('.', 1)[-1]
    if kind == 'Sequential':
        for child in kids(module):
            x = run(child, x)
        return x
    if kind == 'ParallelTable':
        return [run(c, xi) for c, xi in zip(kids(module), x)]
    if kind == 'ConcatTable':
        return [run(c, x) for c in kids(module)]
    if kind == 'CAddTable':
        return sum(x[1:], x[0])
    if kind == 'ReLU':
        return x.clamp(min=0)
    if kind == 'Threshold':
        return torch.where(x > field(module, 'threshold'), x,
                           torch.full_like(x, field(module, 'val')))
    if kind in ('Dropout', 'Identity'):
        return x
    if kind in ('SpatialSymmetricPadding', 'SpatialZeroPadding'):
        p = field(module, 'pad_l')
        assert p == field(module, 'pad_t')
        if p < 0:
            return x[..., -p:p, -p:p]
        mode = 'symmetric' if kind == 'SpatialSymmetricPadding' \
            else 'constant'
        return torch.from_numpy(
            np.pad(x.numpy(), ((0, 0), (0, 0), (p, p), (p, p)), mode=mode))
    if kind == 'SpatialConvolution':
        bias = field(module, 'bias') if b'bias' in module._obj else None
        return F.conv2d(
            x, torch.from_numpy(field(module, 'weight')).double(),
            None if bias is None else torch.from_numpy(bias).double(),
            stride=field(module, 'dW'), padding=field(module, 'padW'))
    if kind == 'Linear':
        return x @ torch.from_numpy(field(module, 'weight')).double().t() + \
            torch.from_numpy(field(module, 'bias')).double()
    if kind in ('ConstAffine', 'SpatialConstDiagonal'):
        a, b = (torch.from_numpy(field(module, n)).double().view(1, -1, 1, 1)
                for n in 'ab')
        return x * a + b
    if kind == 'View':
        return x.reshape(x.shape[0], *field(module, 'size')[1:].tolist())
    if kind == 'SpatialUpSamplingNearest':
        s = field(module, 'scale_factor')
        return x.repeat_interleave(s, -2).repeat_interleave(s, -1)
    raise NotImplementedError(kind)


# ------------------------------------------------ a small .t7 writer
def write_t7(obj, path):
    """Torch7 binary serialisation of the fake (what torch.save writes):
    enough for torchfile to read it back. Shared objects are written once,
    as Torch does."""
    memo = {}
    counter = [0]

    with open(path, 'wb') as f:

        def w_int(v):
            f.write(struct.pack('i', v))

        def w_long(v):
            f.write(struct.pack('l', v))

        def w_str(s):
            s = s if isinstance(s, bytes) else s.encode()
            w_int(len(s))
            f.write(s)

        def ref(x):
            if id(x) in memo:
                w_int(memo[id(x)])
                return False
            counter[0] += 1
            memo[id(x)] = counter[0]
            w_int(counter[0])
            return True

        def write(x):
            if x is None:
                w_int(0)
            elif isinstance(x, bool):
                w_int(5)
                w_int(int(x))
            elif isinstance(x, (int, float)):
                w_int(1)
                f.write(struct.pack('d', float(x)))
            elif isinstance(x, (str, bytes)):
                w_int(2)
                w_str(x)
            elif isinstance(x, np.ndarray):
                name = {np.float32: 'Float', np.float64: 'Double',
                        np.int64: 'Long'}[x.dtype.type]
                w_int(4)
                counter[0] += 1
                w_int(counter[0])
                w_str('V 1')
                w_str(f'torch.{name}Tensor')
                w_int(x.ndim)
                for v in x.shape:
                    w_long(v)
                for v in (np.cumprod((x.shape + (1, ))[:0:-1])[::-1]
                          if x.ndim else []):
                    w_long(int(v))
                w_long(1)
                if x.size == 0:
                    w_int(0)
                    return
                w_int(4)
                counter[0] += 1
                w_int(counter[0])
                w_str('V 1')
                w_str(f'torch.{name}Storage')
                w_long(x.size)
                f.write(np.ascontiguousarray(x).tobytes())
            elif isinstance(x, TorchObject):
                w_int(4)
                if ref(x):
                    w_str('V 1')
                    w_str(x.torch_typename())
                    write(x._obj)
            elif isinstance(x, (dict, list)):
                w_int(3)
                if ref(x):
                    items = x.items() if isinstance(x, dict) else \
                        ((i + 1, v) for i, v in enumerate(x))
                    items = list(items)
                    w_int(len(items))
                    for k, v in items:
                        write(k)
                        write(v)
            else:
                raise TypeError(type(x))

        write(obj)


# ------------------------------------------------------------ fixtures
@pytest.fixture(scope='module')
def converter():
    return load_converter()


@pytest.fixture(scope='module')
def release():
    return FakeRelease(seed=0).release()


@pytest.fixture(scope='module')
def converted(converter, release):
    state_dict, problems = converter.convert(release)
    return state_dict, problems


@pytest.fixture(scope='module')
def model(converted):
    model = build_model()
    model.load_state_dict(converted[0], strict=True)
    return model


def as_tensor(array):
    return torch.from_numpy(np.array(array))


# --------------------------------------------------------------- tests
def test_every_module_maps_and_the_model_loads_strictly(
        converted, model, release):
    state_dict, problems = converted
    assert problems == []
    assert set(state_dict) == set(model.state_dict())
    sharp = release[b'model']
    trunk = kids(field(sharp, 'trunk'))
    # layer3 (trunk.modules[7]), block 6, conv3 and its fixed affine
    residual = kids(kids(kids(kids(trunk[6])[5])[0])[0])
    torch.testing.assert_close(model.backbone.layer3[5].conv3.weight,
                               as_tensor(field(residual[6], 'weight')))
    bn3 = model.backbone.layer3[5].bn3
    torch.testing.assert_close(bn3.weight, as_tensor(field(residual[7], 'a')))
    torch.testing.assert_close(bn3.bias, as_tensor(field(residual[7], 'b')))
    assert torch.all(bn3.running_mean == 0)
    torch.testing.assert_close(bn3.running_var + bn3.eps,
                               torch.ones(1024), rtol=0, atol=1e-6)
    # the 3x3 conv sits in updatePadding's Sequential{pad, conv}
    torch.testing.assert_close(
        model.backbone.layer2[0].conv2.weight,
        as_tensor(field(kids(kids(kids(kids(kids(trunk[5])[0])[0])[0])[3])[1],
                        'weight')))
    shortcut = kids(kids(kids(kids(trunk[4])[0])[0])[1])
    torch.testing.assert_close(model.backbone.layer1[0].downsample[0].weight,
                               as_tensor(field(shortcut[0], 'weight')))
    torch.testing.assert_close(model.backbone.layer1[0].downsample[1].weight,
                               as_tensor(field(shortcut[1], 'a')))
    # the Linear(12800 -> 512) as the 10x10 code conv
    linear = field(trunk[11], 'weight')
    head = model.deepmask_head
    assert head.code.weight.shape == (512, 128, 10, 10)
    torch.testing.assert_close(head.code.weight,
                               as_tensor(linear.reshape(512, 128, 10, 10)))
    torch.testing.assert_close(head.code.weight[7, 100, 3, 9],
                               torch.tensor(linear[7, 100 * 100 + 3 * 10 + 9]))
    torch.testing.assert_close(head.reduce.bias,
                               as_tensor(field(trunk[8], 'bias')))
    score = kids(field(sharp, 'scoreBranch'))
    torch.testing.assert_close(head.score_branch[4].weight[:, :, 0, 0],
                               as_tensor(field(score[4], 'weight')))
    mask_linear = kids(kids(field(sharp, 'maskBranchDM'))[0])[0]
    torch.testing.assert_close(head.mask_fc.weight[:, :, 0, 0],
                               as_tensor(field(mask_linear, 'weight')))
    # refs[4]: the final conv appended after the upsampling
    refs = field(sharp, 'refs')
    final = kids(refs[4])[5]
    torch.testing.assert_close(model.refine_head.final.conv.weight,
                               as_tensor(field(final, 'weight')))
    torch.testing.assert_close(model.refine_head.final.conv.bias,
                               as_tensor(field(final, 'bias')))
    # refs[3]'s neth starts with its crop: convs at modules 3, 6, 9
    neth3 = kids(kids(kids(refs[3])[0])[0])
    torch.testing.assert_close(
        model.refine_head.refinements[2].horizontal[1].conv.weight,
        as_tensor(field(neth3[5], 'weight')))
    netv2 = kids(kids(kids(refs[2])[0])[1])
    torch.testing.assert_close(
        model.refine_head.refinements[1].vertical[1].conv.bias,
        as_tensor(field(netv2[4], 'bias')))
    torch.testing.assert_close(model.refine_head.start.weight,
                               as_tensor(field(kids(refs[0])[0], 'weight')))


def test_code_conv_equals_the_linear_on_the_flattened_map(model, release):
    trunk = kids(field(release[b'model'], 'trunk'))
    weight, bias = field(trunk[11], 'weight'), field(trunk[11], 'bias')
    feat = np.random.default_rng(1).standard_normal((1, 128, 10, 10))
    expected = weight.astype(np.float64) @ feat.reshape(-1) + bias
    got = model.deepmask_head.code(torch.from_numpy(feat).float())
    assert got.shape == (1, 512, 1, 1)
    np.testing.assert_allclose(got[0, :, 0, 0].detach().numpy(), expected,
                               rtol=1e-4, atol=1e-4)


def test_refinement_step0_is_symmetric_pad_and_conv(model, release):
    ref1 = kids(field(release[b'model'], 'refs')[1])
    neth, netv = kids(kids(ref1[0])[0]), kids(kids(ref1[0])[1])

    def pad_conv(x, conv):
        # SpatialSymmetricPadding(1,1,1,1) then the unpadded 3x3 conv
        padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)),
                        mode='symmetric')
        return F.conv2d(
            torch.from_numpy(padded),
            torch.from_numpy(field(conv, 'weight')).double(),
            torch.from_numpy(field(conv, 'bias')).double()).numpy()

    def relu(x):
        return np.maximum(x, 0)

    rng = np.random.default_rng(2)
    skip = rng.standard_normal((2, 1024, 10, 10))
    mask = rng.standard_normal((2, 32, 10, 10))
    h = pad_conv(relu(pad_conv(relu(pad_conv(skip, neth[1])), neth[4])),
                 neth[7])
    v = pad_conv(relu(pad_conv(mask, netv[1])), netv[4])
    expected = relu(h + v)
    got = model.refine_head.refinements[0](
        torch.from_numpy(skip).float(), torch.from_numpy(mask).float())
    assert got.shape == (2, 16, 10, 10)
    np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-4,
                               atol=1e-4)


def test_heads_match_the_release_graph(model, release):
    """Trunk tail, score branch, DeepMask mask branch and the whole
    refinement (refs[0..4]) of the release, run by the interpreter on the
    release's skip maps, against mmembed's heads on the same maps."""
    sharp = release[b'model']
    trunk = kids(field(sharp, 'trunk'))
    refs = field(sharp, 'refs')
    gen = torch.Generator().manual_seed(3)
    # a 192x192 patch: C1 96^2 (after the stem ReLU), C2 48^2, C3 24^2,
    # C4 12^2
    feats = tuple(
        torch.randn(1, c, s, s, generator=gen, dtype=torch.float64)
        for c, s in ((64, 96), (256, 48), (512, 24), (1024, 12)))
    c1, c2, c3, c4 = feats
    # release: trunk.modules[8..12], then skpos = {8, 6, 5, 3}
    crop = run(trunk[7], c4)
    code = crop
    for module in trunk[8:]:
        code = run(module, code)
    score = run(field(sharp, 'scoreBranch'), code)
    dm_mask = run(kids(field(sharp, 'maskBranchDM'))[0], code)
    mask = run(refs[0], code)
    for k, skip in zip(range(1, 5), (crop, c3, c2, c1)):
        mask = run(refs[k], [skip, mask])
    assert mask.shape == (1, 160 * 160)

    with torch.no_grad():
        codes, scores = model.deepmask_head(c4.float())
        dm_logits = model.deepmask_head.mask_logits(codes.flatten(1), 56)
        logits = model.refine_head(
            codes.flatten(1), model._skips(tuple(f.float() for f in feats)))
    tol = dict(rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(codes.flatten(1).double(), code, **tol)
    torch.testing.assert_close(scores.flatten(1).double(), score, **tol)
    torch.testing.assert_close(dm_logits.double(),
                               dm_mask.view(1, 56, 56), **tol)
    torch.testing.assert_close(logits.double(), mask.view(1, 160, 160),
                               **tol)


def test_fixed_affines_and_blocks_match_the_release(model, release):
    """Stem (conv1 bias folded into bn1) and layer3's first block (with
    downsample) against the interpreter, away from the border where the
    release pads symmetrically and mmdet's ResNet with zeros."""
    trunk = kids(field(release[b'model'], 'trunk'))
    gen = torch.Generator().manual_seed(4)
    image = torch.randn(1, 3, 32, 32, generator=gen, dtype=torch.float64)
    expected = run(trunk[2], run(trunk[1], run(trunk[0], image)))
    bb = model.backbone
    with torch.no_grad():
        got = bb.relu(bb.norm1(bb.conv1(image.float())))
    torch.testing.assert_close(got[..., 2:-2, 2:-2].double(),
                               expected[..., 2:-2, 2:-2], rtol=1e-4,
                               atol=1e-4)
    feat = torch.randn(1, 512, 8, 8, generator=gen, dtype=torch.float64)
    expected = run(kids(trunk[6])[0], feat)
    with torch.no_grad():
        got = bb.layer3[0](feat.float())
    assert got.shape == expected.shape == (1, 1024, 4, 4)
    torch.testing.assert_close(got[..., 1:, 1:].double(),
                               expected[..., 1:, 1:], rtol=1e-4, atol=1e-4)


def test_batchnorm_trunk_copies_running_stats(converter):
    release = FakeRelease(seed=5, norm='bn').release()
    state_dict = converter.convert_sharpmask(release)
    trunk = kids(field(release[b'model'], 'trunk'))
    residual = kids(kids(kids(kids(trunk[6])[2])[0])[0])
    bn2 = residual[4]
    torch.testing.assert_close(
        state_dict['backbone.layer3.2.bn2.running_var'],
        as_tensor(field(bn2, 'running_var')))
    torch.testing.assert_close(
        state_dict['backbone.layer3.2.bn2.running_mean'],
        as_tensor(field(bn2, 'running_mean')))
    torch.testing.assert_close(state_dict['backbone.layer3.2.bn2.weight'],
                               as_tensor(field(bn2, 'weight')))
    # conv1's bias (nonzero) goes into bn1's mean
    torch.testing.assert_close(
        state_dict['backbone.bn1.running_mean'],
        as_tensor(field(trunk[1], 'running_mean') -
                  field(kids(trunk[0])[1], 'bias')))


def test_inference_form_converts_the_same(converter, converted):
    """The model after ``SharpMask:inference()``: Linears of the trunk and
    score branch turned into convs, views / crops into Identity, the neths
    in refs replaced by Identity (read from ``neths``), the last View
    removed, maskBranchDM = its first Sequential."""
    fake = FakeRelease(seed=0)
    release = fake.release()
    sharp = release[b'model']
    trunk = kids(field(sharp, 'trunk'))
    trunk[7] = fake.identity()
    trunk[10] = fake.identity()
    linear = trunk[11]
    trunk[11] = fake.obj(
        'cudnn.SpatialConvolution', nInputPlane=128, nOutputPlane=512,
        kW=10, kH=10, dW=1, dH=1, padW=0, padH=0,
        weight=field(linear, 'weight').reshape(512, 128, 10, 10),
        bias=field(linear, 'bias'))
    score = kids(field(sharp, 'scoreBranch'))
    for i in (1, 4):
        w = field(score[i], 'weight')
        # a SpatialConvolutionMM-style 2-D weight: reshaped by the fields
        score[i] = fake.obj(
            'nn.SpatialConvolutionMM', nInputPlane=w.shape[1],
            nOutputPlane=w.shape[0], kW=1, kH=1, weight=w,
            bias=field(score[i], 'bias'))
    score[2] = fake.relu()
    sharp._obj[b'maskBranchDM'] = kids(field(sharp, 'maskBranchDM'))[0]
    refs = field(sharp, 'refs')
    kids(refs[4]).pop()
    for k in range(1, 5):
        par = kids(kids(refs[k])[0])
        if kids(par[0])[0].torch_typename() == b'nn.SpatialZeroPadding':
            kids(par[0])[0] = fake.identity()
        par[0] = fake.identity()
    state_dict, problems = converter.convert(release)
    assert problems == []
    reference = converted[0]
    assert list(state_dict) == list(reference)
    assert [k for k, v in reference.items()
            if not torch.equal(state_dict[k], v)] == []


def test_unknown_or_missing_modules_are_reported(converter):
    fake = FakeRelease(seed=6)
    release = fake.release()
    refs = field(release[b'model'], 'refs')
    neth = kids(kids(kids(refs[2])[0])[0])
    neth[5] = fake.obj('nn.SpatialFullConvolution', nInputPlane=64,
                       nOutputPlane=16, kW=3, kH=3,
                       weight=fake.randn(64, 16, 3, 3),
                       bias=fake.randn(16))
    del kids(refs[4])[5]  # the final conv
    _, problems = converter.convert(release)
    assert len(problems) == 2
    assert 'refs[2] horizontal net: expected 3 convs' in problems[0]
    assert ('refs[2].modules[1].modules[1].modules[6] '
            '(nn.SpatialFullConvolution)') in problems[0]
    assert 'refs[4] (last): expected the final conv' in problems[1]
    with pytest.raises(ValueError, match='SpatialFullConvolution'):
        converter.convert_sharpmask(release)
    with pytest.raises(ValueError, match='no trunk'):
        converter.convert(Table({b'model': Table({b'config': 1})}))


def test_cli_reports_problems_and_exit_status(converter, tmp_path,
                                              monkeypatch, capsys):
    fake = FakeRelease(seed=7)
    release = fake.release()
    trunk = kids(field(release[b'model'], 'trunk'))
    trunk.insert(8, fake.obj('nn.Mul', weight=fake.randn(1)))
    monkeypatch.setattr(converter, 'load_t7', lambda path: release)
    dst = tmp_path / 'out.pth'
    assert converter.main(['model.t7', str(dst)]) == 1
    out = capsys.readouterr().out
    assert ('unmapped release module: trunk after layer3: expected conv1x1'
            in out)
    assert 'trunk.modules[9] (nn.Mul)' in out
    assert not dst.exists()
    assert converter.main(['model.t7', str(dst), '--allow-partial']) == 0
    assert dst.exists()


def test_cli_round_trip_through_a_t7_file(converter, release, converted,
                                          tmp_path):
    src = tmp_path / 'model.t7'
    write_t7(release, src)
    # torchfile reads it back with shared neths and refs keys 0..4
    loaded = torchfile.load(str(src))
    sharp = loaded[b'model']
    assert sorted(field(sharp, 'refs')) == [0, 1, 2, 3, 4]
    assert field(sharp, 'neths')[1] is kids(kids(field(
        sharp, 'refs')[2])[0])[0]
    config = tmp_path / 'sharpmask.py'
    config.write_text(f'model = {MODEL_CFG!r}\n')
    dst = tmp_path / 'out.pth'
    assert converter.main([str(src), str(dst), '--config',
                           str(config)]) == 0
    checkpoint = torch.load(dst, map_location='cpu', weights_only=True)
    assert checkpoint['meta']['converter'] == 'sharpmask_t7_to_mmembed'
    assert checkpoint['meta']['release_config']['km'] == 32
    assert checkpoint['meta']['release_config']['dm'] == 'pretrained/deepmask'
    state_dict = checkpoint['state_dict']
    assert list(state_dict) == list(converted[0])
    assert [k for k, v in converted[0].items()
            if not torch.equal(state_dict[k], v)] == []


def test_imports_without_torchfile(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, 'torchfile', None)
    module = load_converter()  # no top-level import of torchfile
    with pytest.raises(ImportError, match='pip install torchfile'):
        module.load_t7('model.t7')
    assert module.main(['model.t7', 'out.pth']) == 2
    assert 'pip install torchfile' in capsys.readouterr().err
