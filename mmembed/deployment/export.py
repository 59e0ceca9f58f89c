# Copyright (c) mmembed authors. All rights reserved.
"""ONNX export of mmembed detectors: the list of exportable models and the
export function used by ``tools/deployment/export_onnx.py``.

Two graphs can be exported from a built detector (``init_detector``):

* ``'tensor'``: ``forward(mode='tensor')``, the raw head outputs; the caller
  does the post-processing (as mmdeploy's detection pipelines do).
* ``'end2end'``: boxes, scores, labels and masks of a fixed number of
  detections per image, with NMS inside the graph (``--with-postprocess``).

Both take the *normalised, padded* image batch that mmdet's
``DetDataPreprocessor`` produces (mean/std, BGR->RGB, pad to a multiple of
32): preprocessing stays outside the graph, as in mmdeploy.

Exporter: torch's TorchScript-based exporter (``dynamo=False``). The
post-processing NMS is an ``autograd.Function`` with an ONNX ``symbolic``
(one ``NonMaxSuppression`` node), which that exporter supports without
extra packages; the dynamo exporter (torch's default since 2.9) would need
``onnxscript`` and a custom translation table for it.
"""
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from .embedmask import OUTPUT_NAMES, EmbedMaskEndToEnd
from .roi_align import roi_align_opset16

DEFAULT_OPSET = 17


@dataclass(frozen=True)
class ExportSpec:
    """How one detector type is exported.

    Attributes:
        tensor_groups: names for the structure ``detector._forward`` returns:
            one tuple of names per top-level item (head); a name whose value
            is a per-level list gets ``_<level>`` suffixes.
        end_to_end: builds the fixed-shape post-processing module from the
            detector and K (``max_per_img`` override, None = the config's);
            None if the method has no end-to-end export yet.
    """
    tensor_groups: Tuple[Tuple[str, ...], ...]
    end_to_end: Optional[Callable[[nn.Module, Optional[int]], nn.Module]]
    tensor_forward: Optional[Callable[[nn.Module, Tensor], tuple]] = None


def _images_only_forward(detector: nn.Module, inputs: Tensor) -> tuple:
    """``detector._forward`` for detectors whose ``_forward`` reads image
    metas (mmdet's two-stage ones: the RPN head's ``predict``). The metas
    say what an exported graph sees: the padded input is the image, so
    proposals that start as whole images span the whole input."""
    from mmdet.structures import DetDataSample
    height, width = inputs.shape[-2:]
    shape = (int(height), int(width))
    samples = [
        DetDataSample(metainfo=dict(img_shape=shape, ori_shape=shape,
                                    pad_shape=shape,
                                    batch_input_shape=shape,
                                    scale_factor=(1., 1.)))
        for _ in range(inputs.shape[0])
    ]
    return detector._forward(inputs, samples)


# The one list of exportable detectors: registered type name of the
# detector, or of its ``roi_head`` for mmdet detector types whose method is
# set by the RoI head (ISTR is mmdet's ``SparseRCNN`` with ISTRRoIHead) ->
# spec. A new model joins with one line.
EXPORTABLE_MODELS: Dict[str, ExportSpec] = {
    'EmbedMask':
    ExportSpec(
        tensor_groups=(('cls_score', 'bbox_pred', 'centerness', 'code'),
                       ('pixel_embeds', )),
        end_to_end=EmbedMaskEndToEnd),
    # raw outputs only: the blender (RoIAlign on the bases) and its paste
    # are not exported yet
    'BlendMask':
    ExportSpec(
        tensor_groups=(('cls_score', 'bbox_pred', 'centerness', 'attention'),
                       ('bases', )),
        end_to_end=None),
    # raw outputs only: the last stage's logits, boxes and mask codes
    # (ISTRRoIHead.forward); top-k, decode and paste stay outside
    'ISTRRoIHead':
    ExportSpec(
        tensor_groups=(('cls_score', 'bboxes', 'mask_codes'), ),
        end_to_end=None,
        tensor_forward=_images_only_forward),
}


def export_spec(detector: nn.Module) -> ExportSpec:
    """The :class:`ExportSpec` of ``detector``'s class (or a parent's).

    Raises:
        KeyError: the detector type is not in :data:`EXPORTABLE_MODELS`.
    """
    # the RoI head first: mmdet's SparseRCNN is exportable only as ISTR
    owners = [getattr(detector, 'roi_head', None), detector]
    for owner in owners:
        if owner is None:
            continue
        for cls in type(owner).__mro__:
            if cls.__name__ in EXPORTABLE_MODELS:
                return EXPORTABLE_MODELS[cls.__name__]
    raise KeyError(
        f'{type(detector).__name__} is not exportable; mmembed exports '
        f'{sorted(EXPORTABLE_MODELS)} (mmembed.deployment.EXPORTABLE_MODELS)')


def _flatten(outputs, groups: Sequence[Sequence[str]]
             ) -> Tuple[List[Tensor], List[str]]:
    tensors, names = [], []
    if len(outputs) != len(groups):
        raise ValueError(f'forward(mode="tensor") returned {len(outputs)} '
                         f'groups, the export spec names {len(groups)}')
    for group, group_names in zip(outputs, groups):
        if len(group) != len(group_names):
            raise ValueError(f'an output group has {len(group)} items, the '
                             f'export spec names {list(group_names)}')
        for item, name in zip(group, group_names):
            if isinstance(item, Tensor):
                tensors.append(item)
                names.append(name)
            else:
                for level, tensor in enumerate(item):
                    tensors.append(tensor)
                    names.append(f'{name}_{level}')
    return tensors, names


class TensorOutputs(nn.Module):
    """``detector._forward`` with its nested outputs flattened to a tuple,
    named by :meth:`output_names`."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector
        spec = export_spec(detector)
        self.groups = spec.tensor_groups
        self._forward_fn = spec.tensor_forward

    def _raw(self, inputs: Tensor):
        if self._forward_fn is not None:
            return self._forward_fn(self.detector, inputs)
        return self.detector._forward(inputs)

    def forward(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        return tuple(_flatten(self._raw(inputs), self.groups)[0])

    def output_names(self, inputs: Tensor) -> List[str]:
        with torch.no_grad():
            return _flatten(self._raw(inputs), self.groups)[1]


def build_export_module(detector: nn.Module,
                        with_postprocess: bool = False,
                        max_per_img: Optional[int] = None) -> nn.Module:
    """The module that is traced: :class:`TensorOutputs` or the method's
    end-to-end module (in eval mode)."""
    spec = export_spec(detector)
    detector.eval()
    if not with_postprocess:
        if max_per_img is not None:
            raise ValueError('max_per_img only applies with_postprocess')
        return TensorOutputs(detector).eval()
    if spec.end_to_end is None:
        raise NotImplementedError(
            f'{type(detector).__name__} has no end-to-end export yet; '
            'export without --with-postprocess')
    return spec.end_to_end(detector, max_per_img).eval()


def export_onnx(detector: nn.Module,
                out_file: str,
                input_shape: Tuple[int, int, int, int],
                with_postprocess: bool = False,
                max_per_img: Optional[int] = None,
                opset_version: int = DEFAULT_OPSET) -> List[str]:
    """Export ``detector`` to ``out_file`` for a fixed input shape.

    Args:
        detector: built mmembed detector (weights loaded).
        out_file: ``.onnx`` path.
        input_shape: (B, 3, H, W); H and W must be multiples of the
            detector's ``pad_size_divisor`` (32 in our configs).
        with_postprocess: export boxes / scores / labels / masks (see
            :mod:`mmembed.deployment.embedmask`) instead of raw outputs.
        max_per_img: K of the end-to-end graph (default: the config's).
        opset_version: ONNX opset (>= 11 for NonMaxSuppression; RoIAlign
            is exact from 16 on, see :mod:`.roi_align`).

    Returns:
        the graph's output names; the input is named ``'inputs'``.
    """
    batch, channels, height, width = input_shape
    divisor = getattr(detector.data_preprocessor, 'pad_size_divisor', 1) or 1
    if height % divisor or width % divisor:
        raise ValueError(f'input size {height}x{width} must be a multiple of '
                         f'the pad_size_divisor {divisor}')
    module = build_export_module(detector, with_postprocess, max_per_img)
    device = next(detector.parameters()).device
    dummy = torch.zeros(input_shape, device=device)
    names = list(OUTPUT_NAMES) if with_postprocess else \
        module.output_names(dummy)
    with warnings.catch_warnings():
        # tracer warnings about Python ints taken from static shapes: the
        # graph is exported for one fixed input shape on purpose
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
        warnings.filterwarnings('ignore', category=DeprecationWarning)
        warnings.filterwarnings('ignore', category=FutureWarning)
        warnings.filterwarnings('ignore', category=UserWarning)
        with torch.no_grad(), roi_align_opset16(opset_version):
            torch.onnx.export(
                module, (dummy, ),
                out_file,
                input_names=['inputs'],
                output_names=names,
                opset_version=opset_version,
                do_constant_folding=True,
                dynamo=False)
    return names
