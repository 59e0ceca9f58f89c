# Copyright (c) mmembed authors. All rights reserved.
"""ONNX ``RoiAlign`` (opset 16) for mmcv's RoIAlign, used while exporting.

mmcv 2.1's ``RoIAlignFunction.symbolic`` writes ``Squeeze`` with an ``axes``
*attribute*, which exists only up to opset 12; at the opset mmembed exports
(17) onnxruntime refuses the graph ("Unrecognized attribute: axes for
operator Squeeze"). It also emulates ``aligned=True`` by shifting the RoIs by
half a pixel and calling the opset-10 operator, whose ``output_half_pixel``
mode clamps RoI sizes to at least one cell, which mmcv's aligned kernel does
not. Opset 16 has the exact operator: ``coordinate_transformation_mode=
'half_pixel'`` is mmcv's ``aligned=True`` (shift by 0.5, no clamp) and
``'output_half_pixel'`` its ``aligned=False``.

:func:`roi_align_opset16` swaps the symbolic in for the duration of an
export only; eager RoIAlign (and every other user of mmcv) is untouched.
"""
import contextlib
from typing import Iterator

import torch


def _roi_align_symbolic(g, input, rois, output_size, spatial_scale: float,
                        sampling_ratio: int, pool_mode: str, aligned: bool):
    """mmcv RoIs are (R, 5) ``[batch index, x1, y1, x2, y2]``; ONNX wants
    the boxes (R, 4) and the batch indices (R,) int64 apart."""
    from torch.onnx import TensorProtoDataType
    index = g.op('Gather', rois,
                 g.op('Constant', value_t=torch.tensor([0])), axis_i=1)
    index = g.op('Squeeze', index,
                 g.op('Constant', value_t=torch.tensor([1])))
    index = g.op('Cast', index, to_i=TensorProtoDataType.INT64)
    boxes = g.op('Gather', rois,
                 g.op('Constant', value_t=torch.tensor([1, 2, 3, 4])),
                 axis_i=1)
    return g.op(
        'RoiAlign',
        input,
        boxes,
        index,
        coordinate_transformation_mode_s='half_pixel'
        if aligned else 'output_half_pixel',
        mode_s=pool_mode,
        output_height_i=output_size[0],
        output_width_i=output_size[1],
        # mmcv: 0 = adaptive (ceil(roi size / output size)), as ONNX
        sampling_ratio_i=max(0, sampling_ratio),
        spatial_scale_f=spatial_scale)


@contextlib.contextmanager
def roi_align_opset16(opset_version: int) -> Iterator[None]:
    """While active, mmcv's RoIAlign exports as opset-16 ``RoiAlign``.

    Below opset 16 the operator has no ``coordinate_transformation_mode``
    and mmcv's own symbolic (valid up to opset 12) is left in place.
    """
    if opset_version < 16:
        yield
        return
    from mmcv.ops.roi_align import RoIAlignFunction
    original = RoIAlignFunction.__dict__['symbolic']
    RoIAlignFunction.symbolic = staticmethod(_roi_align_symbolic)
    try:
        yield
    finally:
        RoIAlignFunction.symbolic = original
