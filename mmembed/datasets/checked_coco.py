# Copyright (c) mmembed authors. All rights reserved.
"""``CheckedCocoDataset``: mmdet's ``CocoDataset`` that says what it drops.

mmdet 3.3's ``CocoDataset.parse_data_info`` silently skips annotations whose
box is empty, negative or outside the image and annotations of categories
that are not in ``metainfo``; ``LoadAnnotations`` silently turns an instance
whose polygons all have fewer than 3 points into an ignored one;
``filter_data`` silently drops images without annotations; and an annotation
file that points at a missing image fails only when the loader reaches it,
mid-epoch. This dataset keeps mmdet's behaviour for the data it keeps and adds
one check pass at load time:

* **errors** (:class:`AnnotationError`, a ``ValueError``), always: image files
  that do not exist, category ids that the annotation file's own
  ``categories`` do not define, non-finite box coordinates;
* **dropped instances** (``on_invalid='warn'``, the default: one
  :class:`AnnotationWarning` per kind with the count and the first ids;
  ``on_invalid='error'``: an :class:`AnnotationError`): boxes of zero or
  negative width/height/area, boxes entirely outside the image, instances
  whose every polygon has fewer than 3 points (``LoadAnnotations`` would
  ignore them), categories defined in the file but left out of ``metainfo``
  (counted only: training on a subset of classes is normal);
* **kept, but reported** (a warning with a count): boxes partly outside the
  image, polygons with fewer than 3 points next to valid ones (the valid
  ones are kept), images whose every annotation is crowd (they train as
  background), images without annotations (dropped by ``filter_empty_gt``,
  or kept as background without it), images below ``filter_cfg.min_size``.

Each message names the annotation file, the annotation id, the image id and
the image file, and says what is wrong and what to change.
"""
import math
import os.path as osp
import warnings
from collections import defaultdict
from typing import Dict, List, Sequence, Union

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

_MAX_EXAMPLES = 5


class AnnotationError(ValueError):
    """An annotation file cannot be used as it is."""


class AnnotationWarning(UserWarning):
    """Annotations were dropped or kept with a problem; the message has the
    count and the first ids."""


# kind -> (what happens, what to do)
_DROPPED = {
    'degenerate_box': 'dropped (box width, height or area <= 0 or '
                      'below 1 pixel)',
    'box_outside_image': 'dropped (box does not overlap the image)',
    'no_valid_polygon': 'dropped (every polygon has fewer than 3 points; '
                        'mmdet LoadAnnotations would ignore the instance)',
}
_KEPT = {
    'box_partly_outside_image': 'kept unclipped (box extends past the '
                                'image border)',
    'short_polygon': 'kept without its polygons of fewer than 3 points',
    'all_crowd_image': 'kept: every annotation is crowd, so the image '
                       'trains as background',
    'image_without_annotations': 'has no usable annotation',
    'image_below_min_size': 'dropped (smaller than filter_cfg.min_size)',
    'category_not_in_metainfo': 'dropped (category not in metainfo '
                                'classes; expected when training on a '
                                'subset of classes)',
}


def _short_polygon(polygon: Sequence[float]) -> bool:
    return len(polygon) < 6 or len(polygon) % 2 != 0


@DATASETS.register_module()
class CheckedCocoDataset(CocoDataset):
    """:class:`mmdet.datasets.CocoDataset` plus load-time annotation checks.

    Use it as a drop-in ``type`` in any COCO dataset config::

        train_dataloader = dict(dataset=dict(type='CheckedCocoDataset'))

    Args:
        on_invalid: ``'warn'`` (default) drops invalid instances as mmdet
            does, with one warning per kind that has the count and the first
            ids; ``'error'`` raises :class:`AnnotationError` instead.
        check_files: check at load time that every image file exists
            (one ``os.path.isfile`` per image; local files only).
        **kwargs: go unchanged to :class:`CocoDataset`.
    """

    def __init__(self,
                 *args,
                 on_invalid: str = 'warn',
                 check_files: bool = True,
                 **kwargs) -> None:
        if on_invalid not in ('warn', 'error'):
            raise ValueError(
                f"CheckedCocoDataset: on_invalid must be 'warn' or 'error', "
                f'got {on_invalid!r}')
        self.on_invalid = on_invalid
        self.check_files = check_files
        self._problems: Dict[str, List[str]] = defaultdict(list)
        self._errors: List[str] = []
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------------ #
    def load_data_list(self) -> List[dict]:
        self._problems = defaultdict(list)
        self._errors = []
        with self._defined_categories():
            data_list = super().load_data_list()
        if self.check_files:
            for info in data_list:
                if (not info['img_path'].startswith(('s3:', 'http', 'petrel'))
                        and not osp.isfile(info['img_path'])):
                    self._errors.append(
                        f"image id {info['img_id']}: file "
                        f"{info['img_path']} does not exist")
        if self._errors:
            shown = '\n  '.join(self._errors[:_MAX_EXAMPLES * 2])
            raise AnnotationError(
                f'{self.ann_file}: {len(self._errors)} error(s); fix the '
                f'annotation file or data_prefix:\n  {shown}' +
                (f'\n  ... and {len(self._errors) - 2 * _MAX_EXAMPLES} more'
                 if len(self._errors) > 2 * _MAX_EXAMPLES else ''))
        self._report(_DROPPED, raise_error=self.on_invalid == 'error')
        return data_list

    def filter_data(self) -> List[dict]:
        kept = super().filter_data()
        kept_ids = {info['img_id'] for info in kept}
        min_size = (self.filter_cfg or {}).get('min_size', 0)
        for info in self.data_list:
            if not info['instances']:
                fate = ('dropped by filter_empty_gt'
                        if info['img_id'] not in kept_ids else
                        'kept as background')
                self._problems['image_without_annotations'].append(
                    f"image id {info['img_id']} ({info['img_path']}): "
                    f'{fate}')
            elif (not self.test_mode and self.filter_cfg
                  and min(info['width'], info['height']) < min_size):
                self._problems['image_below_min_size'].append(
                    f"image id {info['img_id']} ({info['img_path']}): "
                    f"{info['width']}x{info['height']} < {min_size}")
        self._report(_KEPT, raise_error=False)
        return kept

    # ------------------------------------------------------------------ #
    def _defined_categories(self):
        """Context manager capturing the file's category ids (the COCO api
        is deleted at the end of :meth:`CocoDataset.load_data_list`)."""
        dataset = self
        api_cls = self.COCOAPI

        class _Capture:

            def __enter__(self):

                def make(*args, **kwargs):
                    coco = api_cls(*args, **kwargs)
                    dataset._file_cat_ids = set(coco.cats)
                    return coco

                dataset.COCOAPI = make

            def __exit__(self, *exc):
                del dataset.COCOAPI  # back to the class attribute
                return False

        return _Capture()

    def parse_data_info(self, raw_data_info: dict) -> Union[dict, List[dict]]:
        img_info = raw_data_info['raw_img_info']
        file_name = osp.join(self.data_prefix['img'], img_info['file_name'])
        width, height = img_info['width'], img_info['height']
        num_usable, num_crowd = 0, 0
        for ann in raw_data_info['raw_ann_info']:
            where = (f"annotation id {ann.get('id')} (image id "
                     f"{img_info['img_id']}, {file_name})")
            if ann.get('ignore', False):
                continue
            bbox = ann.get('bbox')
            if bbox is None or len(bbox) != 4:
                self._errors.append(f'{where}: bbox {bbox!r} is not '
                                    '[x, y, w, h]')
                continue
            if not all(math.isfinite(float(v)) for v in bbox):
                self._errors.append(f'{where}: bbox {bbox} is not finite')
                continue
            cat_id = ann.get('category_id')
            if cat_id not in self._file_cat_ids:
                self._errors.append(
                    f'{where}: category_id {cat_id} is not defined in the '
                    f"file's categories {sorted(self._file_cat_ids)}")
                continue
            x1, y1, w, h = bbox
            if ann.get('area', w * h) <= 0 or w < 1 or h < 1:
                self._problems['degenerate_box'].append(
                    f"{where}: bbox {bbox}, area {ann.get('area')}")
                continue
            inter_w = max(0, min(x1 + w, width) - max(x1, 0))
            inter_h = max(0, min(y1 + h, height) - max(y1, 0))
            if inter_w * inter_h == 0:
                self._problems['box_outside_image'].append(
                    f'{where}: bbox {bbox} vs image {width}x{height}')
                continue
            if cat_id not in self.cat_ids:
                self._problems['category_not_in_metainfo'].append(
                    f'{where}: category_id {cat_id}')
                continue
            if x1 < 0 or y1 < 0 or x1 + w > width or y1 + h > height:
                self._problems['box_partly_outside_image'].append(
                    f'{where}: bbox {bbox} vs image {width}x{height}')
            segm = ann.get('segmentation')
            if isinstance(segm, list) and segm:
                short = [p for p in segm if _short_polygon(p)]
                if len(short) == len(segm):
                    self._problems['no_valid_polygon'].append(
                        f'{where}: polygon lengths '
                        f'{[len(p) for p in segm]} (need >= 6 coordinates)')
                    continue
                if short:
                    self._problems['short_polygon'].append(
                        f'{where}: {len(short)} of {len(segm)} polygons')
            if ann.get('iscrowd', False):
                num_crowd += 1
            else:
                num_usable += 1
        if num_crowd and not num_usable:
            self._problems['all_crowd_image'].append(
                f"image id {img_info['img_id']} ({file_name}): {num_crowd} "
                'crowd annotation(s)')
        data_info = super().parse_data_info(raw_data_info)
        if self.on_invalid == 'warn':
            # LoadAnnotations would mark such instances ignored; dropping
            # them here keeps the count in the warning exact
            data_info['instances'] = [
                inst for inst in data_info['instances']
                if not (isinstance(inst.get('mask'), list) and inst['mask']
                        and all(_short_polygon(p) for p in inst['mask']))
            ]
        return data_info

    def _report(self, kinds: Dict[str, str], raise_error: bool) -> None:
        for kind, fate in kinds.items():
            items = self._problems.pop(kind, [])
            if not items:
                continue
            shown = '; '.join(items[:_MAX_EXAMPLES])
            more = (f'; ... and {len(items) - _MAX_EXAMPLES} more'
                    if len(items) > _MAX_EXAMPLES else '')
            message = (f'{self.ann_file}: {len(items)} {kind}: {fate}. '
                       f'First: {shown}{more}')
            if raise_error:
                raise AnnotationError(
                    message + " (on_invalid='error'; fix the annotations "
                    "or use on_invalid='warn' to drop them)")
            warnings.warn(message, AnnotationWarning, stacklevel=2)
