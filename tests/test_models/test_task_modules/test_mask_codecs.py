# Copyright (c) mmembed authors. All rights reserved.
"""ISTR mask codecs: DCT exactness, PCA formulas, round-trip quality on real
coco128 masks (reported and bounded), streaming PCA vs numpy, the fit tool."""
import importlib.util
import math
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.registry import TASK_UTILS

from mmembed.models.task_modules.codecs import (DCTMaskCodec, PCAMaskCodec,
                                                dct_matrix, load_pca_file,
                                                soft_mask_logits, zigzag_order)
from mmembed.models.task_modules.codecs.pca_fit import (StreamingCovariance,
                                                        iter_coco_box_masks,
                                                        mask_rows_for_pca)
from mmembed.testing import get_repo_root, get_shared_data_root

COCO128 = osp.join(get_shared_data_root(), 'coco128', 'annotations',
                   'instances_train2017.json')


def mask_iou(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    inter = (pred & gt).flatten(1).sum(1)
    union = (pred | gt).flatten(1).sum(1).clamp(min=1)
    return inter / union


@pytest.fixture(scope='module')
def coco128_masks() -> torch.Tensor:
    if not osp.isfile(COCO128):
        pytest.skip(f'coco128 not found at {COCO128}')
    from pycocotools.coco import COCO
    coco = COCO(COCO128)
    masks = np.concatenate(list(iter_coco_box_masks(coco, 28)))
    return torch.from_numpy(masks).float()


def test_dct_matrix_is_the_dct_ii_formula_and_orthonormal():
    n = 7
    want = np.zeros((n, n))
    for u in range(n):
        for x in range(n):
            scale = math.sqrt((1 if u == 0 else 2) / n)
            want[u, x] = scale * math.cos(math.pi * (x + 0.5) * u / n)
    got = dct_matrix(n)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-12)
    torch.testing.assert_close(got @ got.t(), torch.eye(n, dtype=got.dtype))


def test_zigzag_order_is_jpeg():
    # JPEG 4x4 zig-zag, written out by hand (row-major indices u * 4 + v)
    want = [0, 1, 4, 8, 5, 2, 3, 6, 9, 12, 13, 10, 7, 11, 14, 15]
    assert zigzag_order(4).tolist() == want


def test_dct_codec_is_exact_at_full_rank():
    torch.manual_seed(0)
    codec = DCTMaskCodec(code_dim=13 * 13, mask_size=13)
    masks = (torch.rand(5, 13, 13) > 0.5).float()
    codes = codec.encode(masks)
    assert codes.shape == (5, 169)
    torch.testing.assert_close(codec.decode(codes), masks, atol=1e-5, rtol=0)
    # codes are the 2-D DCT coefficients: the DC term is sum / S
    torch.testing.assert_close(codes[:, 0], masks.sum((1, 2)) / 13)


def test_dct_codec_is_built_from_the_registry_and_not_saved():
    codec = TASK_UTILS.build(dict(type='DCTMaskCodec', code_dim=10,
                                  mask_size=8))
    assert isinstance(codec, DCTMaskCodec)
    assert codec.state_dict() == {}  # rebuilt from two integers


def test_pca_encode_decode_follow_the_formulas():
    """encode = (logit(soft) - mean) @ C^T / sqrt(var); decode =
    sigmoid(c @ (C * sqrt(var)) + mean), written out in float64."""
    rng = np.random.default_rng(0)
    size, dim = 6, 5
    comps = np.linalg.qr(rng.normal(size=(size * size, dim)))[0].T
    var = rng.uniform(0.5, 3, dim)
    mean = rng.normal(size=size * size)
    codec = PCAMaskCodec(code_dim=dim, mask_size=size,
                         random_soft_targets=False)
    codec.load_arrays(comps, var, mean)
    masks = torch.from_numpy(rng.random((3, size, size)) > 0.5).float()
    soft = np.where(masks.flatten(1).numpy() > 0.01, 0.99, 0.01)
    want = (np.log(soft / (1 - soft)) - mean) @ comps.T / np.sqrt(var)
    codes = codec.encode(masks)
    np.testing.assert_allclose(codes.numpy(), want, rtol=1e-4, atol=1e-4)
    dec = 1 / (1 + np.exp(-(want @ (comps * np.sqrt(var)[:, None]) + mean)))
    np.testing.assert_allclose(
        codec.decode(codes).flatten(1).numpy(), dec, rtol=1e-4, atol=1e-5)


def test_soft_targets_follow_istr_and_are_seedable():
    masks = (torch.rand(4, 100) > 0.5).float()
    a = soft_mask_logits(masks, generator=torch.Generator().manual_seed(3))
    b = soft_mask_logits(masks, generator=torch.Generator().manual_seed(3))
    c = soft_mask_logits(masks, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, c)
    probs = a.sigmoid()
    # r ~ U(0, 0.05) clipped at 0.01: foreground in [0.95, 0.99], background
    # in [0.01, 0.05]
    fg, bg = probs[masks > 0], probs[masks == 0]
    assert fg.min() >= 0.95 - 1e-5 and fg.max() <= 0.99 + 1e-5
    assert bg.min() >= 0.01 - 1e-6 and bg.max() <= 0.05 + 1e-6
    assert (bg - 0.01).abs().lt(1e-6).float().mean() > 0.1  # the clip


def test_pca_codec_buffers_are_in_the_state_dict_and_checked():
    codec = PCAMaskCodec(code_dim=4, mask_size=5)
    assert set(codec.state_dict()) == {
        'components', 'explained_variances', 'means'}
    with pytest.raises(ValueError, match='components'):
        codec.load_arrays(np.zeros((3, 25)), np.ones(3), np.zeros(25))
    with pytest.raises(ValueError, match='> 0'):
        codec.load_arrays(np.zeros((4, 25)), np.zeros(4), np.zeros(25))
    with pytest.raises(ValueError, match=r'masks \(N, 5, 5\)'):
        codec.encode(torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match=r'codes \(N, 4\)'):
        codec.decode(torch.zeros(2, 3))
    with pytest.raises(FileNotFoundError, match='fit_mask_codec'):
        PCAMaskCodec(codec_file='/nonexistent/codec.npz').init_weights()


def test_streaming_covariance_equals_numpy():
    rng = np.random.default_rng(1)
    rows = rng.normal(size=(200, 12)) @ rng.normal(size=(12, 12))
    stats = StreamingCovariance(12)
    for chunk in np.array_split(rows, 7):
        stats.update(chunk)
    fit = stats.fit_pca(4)
    cov = np.cov(rows, rowvar=False)
    values, vectors = np.linalg.eigh(cov)
    np.testing.assert_allclose(fit['means'], rows.mean(0), rtol=1e-5)
    np.testing.assert_allclose(fit['explained_variances'], values[::-1][:4],
                               rtol=1e-4)
    np.testing.assert_allclose(
        np.abs(fit['components'] @ vectors[:, ::-1][:, :4]), np.eye(4),
        atol=1e-4)
    np.testing.assert_allclose(fit['explained_variance_ratio'],
                               values[::-1][:4] / values.sum(), rtol=1e-4)


def test_a_pca_with_more_dimensions_than_masks_is_refused():
    stats = StreamingCovariance(16)
    stats.update(np.random.default_rng(0).normal(size=(5, 16)))
    assert stats.fit_pca(4)['components'].shape == (4, 16)
    with pytest.raises(ValueError, match='needs more than 5 masks, got 5'):
        stats.fit_pca(5)


def test_round_trip_on_coco128_masks(coco128_masks):
    """Both codecs reconstruct real COCO masks (cropped to their box, 28 x
    28). Measured here on the 929 coco128 masks: PCA-60 fitted on them
    (82.1 % variance) mean IoU 0.957, DCT-60 0.936, DCT-256 0.995."""
    masks = coco128_masks
    gen = torch.Generator().manual_seed(0)
    stats = StreamingCovariance(28 * 28)
    stats.update(mask_rows_for_pca(masks.numpy(), generator=gen))
    fit = stats.fit_pca(60)
    explained = float(fit['explained_variance_ratio'].sum())
    pca = PCAMaskCodec()
    pca.load_arrays(fit['components'], fit['explained_variances'],
                    fit['means'])
    results = {}
    results['pca60'] = mask_iou(
        pca.decode(pca.encode(masks, generator=gen)) >= 0.5, masks > 0)
    for dim in (60, 256):
        dct = DCTMaskCodec(code_dim=dim)
        results[f'dct{dim}'] = mask_iou(
            dct.decode(dct.encode(masks)) >= 0.5, masks > 0)
    report = {k: round(float(v.mean()), 3) for k, v in results.items()}
    print(f'\n{len(masks)} coco128 masks, mean IoU {report}, PCA explains '
          f'{100 * explained:.1f} %')
    assert 0.75 < explained < 0.9  # official COCO train2017: 81.4 %
    assert report['pca60'] > 0.93
    assert report['dct60'] > 0.9
    assert report['dct256'] > 0.98
    assert report['pca60'] > report['dct60']  # fitting helps at equal D


def load_fit_tool():
    path = osp.join(get_repo_root(), 'tools', 'misc', 'fit_mask_codec.py')
    spec = importlib.util.spec_from_file_location('fit_mask_codec', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fit_tool_on_coco128_loads_into_the_codec(tmp_path, capsys):
    if not osp.isfile(COCO128):
        pytest.skip(f'coco128 not found at {COCO128}')
    out = tmp_path / 'codec.npz'
    summary = load_fit_tool().main(
        [COCO128, '--out', str(out), '--dim', '60', '--seed', '1'])
    printed = capsys.readouterr().out
    assert 'components explain' in printed and '% of the variance' in printed
    assert summary['num_masks'] == 929
    codec = TASK_UTILS.build(
        dict(type='PCAMaskCodec', code_dim=60, codec_file=str(out)))
    codec.init_weights()
    arrays = load_pca_file(str(out))
    torch.testing.assert_close(codec.components,
                               torch.from_numpy(arrays['components']))
    # whitened: codes of the fitting masks have about unit variance
    from pycocotools.coco import COCO
    masks = torch.from_numpy(
        np.concatenate(list(iter_coco_box_masks(COCO(COCO128), 28)))).float()
    codes = codec.encode(masks, generator=torch.Generator().manual_seed(1))
    assert codes.var(0).mean().item() == pytest.approx(1.0, abs=0.05)


def test_official_istr_npz_layout_loads(tmp_path):
    """The official LME file stores (1, D, F) / (1, D) / (1, F) arrays."""
    rng = np.random.default_rng(0)
    path = tmp_path / 'official.npz'
    comps = np.linalg.qr(rng.normal(size=(16, 3)))[0].T[None]
    np.savez(path, components_c=comps, explained_variance_c=np.ones((1, 3)),
             mean_c=np.zeros((1, 16)), ratio_c=np.ones((1, 3)))
    codec = PCAMaskCodec(code_dim=3, mask_size=4, codec_file=str(path))
    codec.init_weights()
    torch.testing.assert_close(codec.components,
                               torch.from_numpy(comps[0]).float())


def test_dct_decode_for_loss_is_unclamped_and_passes_gradients():
    """ISTR v2's dice loss reads the unclamped reconstruction: pixels the
    inference clamp would cut (values outside [0, 1]) keep their gradient."""
    codec = DCTMaskCodec(code_dim=16, mask_size=8)
    torch.manual_seed(0)
    codes = (torch.randn(3, 16) * 4).requires_grad_()
    raw = codec.decode_for_loss(codes)
    assert raw.shape == (3, 8, 8)
    outside = (raw < 0) | (raw > 1)
    assert outside.any() and (~outside).any()
    torch.testing.assert_close(codec.decode(codes), raw.clamp(0, 1))
    raw.sum().backward()
    grad_raw = codes.grad.clone()
    codes.grad = None
    codec.decode(codes).sum().backward()
    # the clamp cuts the outside pixels' share of the gradient
    assert not torch.allclose(grad_raw, codes.grad)


def test_pca_decode_for_loss_is_decode():
    codec = PCAMaskCodec(code_dim=4, mask_size=8)
    codes = torch.randn(2, 4)
    torch.testing.assert_close(codec.decode_for_loss(codes),
                               codec.decode(codes))
