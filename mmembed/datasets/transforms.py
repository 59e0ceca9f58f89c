# Copyright (c) mmembed authors. All rights reserved.
"""``LoadImageFromFileChecked``: mmcv's ``LoadImageFromFile`` with an error
that says which file could not be decoded and why.

mmcv 2.1's loader ends with ``assert img is not None, 'failed to load
image: ...'`` when OpenCV cannot decode a file (a truncated JPEG, an HTML
error page saved as ``.jpg``): an ``AssertionError`` that ``python -O``
removes, after which the pipeline crashes on ``None.shape``. This subclass
raises :class:`ImageLoadError` (a ``ValueError``) with the path, the file
size and the likely cause. Grayscale and RGBA files need nothing: the
default ``color_type='color'`` decodes both to 3-channel BGR.
"""
import os
import os.path as osp
from typing import Optional

from mmcv.transforms import LoadImageFromFile
from mmdet.registry import TRANSFORMS


class ImageLoadError(ValueError):
    """An image file exists but cannot be decoded."""


@TRANSFORMS.register_module()
class LoadImageFromFileChecked(LoadImageFromFile):
    """``LoadImageFromFile`` that raises :class:`ImageLoadError` naming the
    file when it cannot be decoded. Arguments as ``LoadImageFromFile``."""

    def transform(self, results: dict) -> Optional[dict]:
        filename = results['img_path']
        try:
            return super().transform(results)
        except AssertionError as exc:  # mmcv: 'failed to load image'
            size = (osp.getsize(filename)
                    if osp.isfile(filename) else 'missing')
            raise ImageLoadError(
                f'cannot decode image {filename} (img_id '
                f"{results.get('img_id')}, {size} bytes): the file is "
                'truncated, corrupt or not an image; re-download or remove '
                'it from the annotation file') from exc
        except FileNotFoundError as exc:
            raise ImageLoadError(
                f'image {filename} (img_id {results.get("img_id")}) does '
                f'not exist (cwd {os.getcwd()}); check data_root and '
                'data_prefix') from exc
