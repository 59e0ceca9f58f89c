# Copyright (c) mmembed authors. All rights reserved.
"""Deployment: ONNX export of mmembed detectors (docs/deployment.md)."""
from .embedmask import EmbedMaskEndToEnd
from .export import (EXPORTABLE_MODELS, ExportSpec, TensorOutputs,
                     build_export_module, export_onnx, export_spec)
from .nms import batched_nms_keep

__all__ = [
    'EXPORTABLE_MODELS', 'ExportSpec', 'TensorOutputs', 'EmbedMaskEndToEnd',
    'batched_nms_keep', 'build_export_module', 'export_onnx', 'export_spec'
]
