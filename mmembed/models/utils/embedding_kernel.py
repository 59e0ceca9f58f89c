# Copyright (c) mmembed authors. All rights reserved.
"""The Gaussian embedding kernel of EmbedMask.

Shape shorthand: P proposals (or instances), D embedding length, M margin
length (1 = one margin per proposal, D = one per dimension), Q pixels, T
(pixel, proposal) pairs.

A pixel p belongs to proposal j with probability
``exp(-sum_d m_jd * (e_pd - q_jd) ** 2)`` (EmbedMask paper Eq. 3 with
``m = 1 / (2 sigma^2)``; official v3 ``loss.py::compute_mask_prob`` with a
margin per dimension). Both functions return the exponent, the *log*
probability, which is what the official inference pastes and thresholds.
"""
import torch
from torch import Tensor


def _check_codes(codes: Tensor, margins: Tensor, dim: int) -> None:
    if codes.dim() != 2 or codes.shape[1] != dim:
        raise ValueError(f'codes must be (P, {dim}), got {tuple(codes.shape)}')
    if margins.dim() != 2 or margins.shape[0] != codes.shape[0] or \
            margins.shape[1] not in (1, dim):
        raise ValueError(f'margins must be ({codes.shape[0]}, 1) or '
                         f'({codes.shape[0]}, {dim}), got '
                         f'{tuple(margins.shape)}')


def embedding_logprob(pixel_embeds: Tensor, codes: Tensor,
                      margins: Tensor) -> Tensor:
    """Dense log-probabilities of every proposal at every pixel.

    Args:
        pixel_embeds: (D, Q) float, pixel embeddings of one image, flattened.
        codes: (P, D) float, proposal embeddings.
        margins: (P, M) float > 0, M in {1, D}.

    Returns:
        (P, Q) float <= 0: ``-sum_d m_d (e_d - q_d)^2``.
    """
    dim = pixel_embeds.shape[0]
    _check_codes(codes, margins, dim)
    weighted = margins * codes  # (P, D)
    # -sum_d m (e - q)^2 = -m.q^2 + 2 (m q).e - m.e^2: two fused matmuls
    # (addmm) instead of a (P, D, Q) tensor, and few launched ops
    neg_dist = torch.addmm(
        torch.addmm((weighted * codes).sum(dim=1, keepdim=True),
                    weighted, pixel_embeds, beta=-1, alpha=2),
        margins.expand(-1, dim), pixel_embeds.pow(2), alpha=-1)
    # rounding can make the distance slightly negative
    return neg_dist.clamp(max=0)


def embedding_logprob_pairs(pixel_embeds: Tensor, pix_inds: Tensor,
                            prop_inds: Tensor, codes: Tensor,
                            margins: Tensor) -> Tensor:
    """Log-probabilities for an explicit list of (pixel, proposal) pairs.

    Used at inference, where each detection only needs the pixels around its
    box, so the cost grows with the summed box area instead of P x Q.

    Args:
        pixel_embeds: (Q, D) float, pixel embeddings of one image (rows).
        pix_inds: (T,) long in [0, Q).
        prop_inds: (T,) long in [0, P).
        codes: (P, D) float.
        margins: (P, M) float > 0, M in {1, D}.

    Returns:
        (T,) float <= 0.
    """
    _check_codes(codes, margins, pixel_embeds.shape[1])
    diff = pixel_embeds[pix_inds] - codes[prop_inds]
    return -(margins[prop_inds] * diff.pow(2)).sum(dim=1)


# log-probabilities closer to 0 than this are clamped before the logit, so
# a pixel at the proposal's own embedding gets a finite logit (about 13.8)
LOGIT_MAX_LOGPROB = -1e-6


def logprob_to_logit(logprob: Tensor) -> Tensor:
    """``log p`` -> ``log p - log(1 - p)``, elementwise, any shape.

    Bilinear upsampling of log-probabilities (the official inference) is
    lopsided: inside an instance ``log p`` saturates at 0 while outside it
    falls without bound, so an interpolated border cell lands on the
    outside's side and masks shrink. Logits are symmetric about p = 0.5 (as
    the logits CondInst and BlendMask upsample), which removes that bias.
    ``logprob`` must be <= 0; it is clamped to ``LOGIT_MAX_LOGPROB``.
    """
    logprob = logprob.clamp(max=LOGIT_MAX_LOGPROB)
    return logprob - torch.log(-torch.expm1(logprob))
