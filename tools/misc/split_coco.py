# Copyright (c) mmembed authors. All rights reserved.
"""Write a held-out split of a COCO annotation file as two annotation files
(``train.json`` and ``heldout.json``), the way to evaluate on a subset with
mmdet's ``CocoMetric`` (it scores every image of its ``ann_file``).

    # the fine-tune learning check's fruits_nuts split (ids 2 5 8 11 14 17)
    python tools/misc/split_coco.py --fruits-nuts
    # your own
    python tools/misc/split_coco.py ann.json --heldout-ids 3 7 9 --out-dir data/my_split
"""
import argparse
import sys

from mmembed.datasets.coco_split import (FRUITS_NUTS_HELDOUT_IDS,
                                         FRUITS_NUTS_SPLIT_DIR,
                                         write_heldout_split)

FRUITS_NUTS_ANN = '../shared/data/fruits_nuts/trainval.json'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('ann_file', nargs='?', help='COCO annotation file')
    parser.add_argument('--heldout-ids', type=int, nargs='+',
                        help='image ids that go to heldout.json')
    parser.add_argument('--out-dir', help='where to write the two files')
    parser.add_argument(
        '--fruits-nuts', action='store_true',
        help=f'the learning check\'s split: {FRUITS_NUTS_ANN} with ids '
        f'{list(FRUITS_NUTS_HELDOUT_IDS)} held out, into '
        f'{FRUITS_NUTS_SPLIT_DIR}/')
    args = parser.parse_args(argv)
    if args.fruits_nuts:
        ann = args.ann_file or FRUITS_NUTS_ANN
        ids = args.heldout_ids or list(FRUITS_NUTS_HELDOUT_IDS)
        out_dir = args.out_dir or FRUITS_NUTS_SPLIT_DIR
    else:
        if not (args.ann_file and args.heldout_ids and args.out_dir):
            parser.error('give ANN_FILE, --heldout-ids and --out-dir '
                         '(or --fruits-nuts)')
        ann, ids, out_dir = args.ann_file, args.heldout_ids, args.out_dir
    paths = write_heldout_split(ann, ids, out_dir)
    for name, path in paths.items():
        print(f'{name}: {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
