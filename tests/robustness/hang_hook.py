# Copyright (c) mmembed authors. All rights reserved.
"""A training hook for the kill/resume test: after the checkpoint of
iteration ``MMEMBED_HANG_AT_ITER`` is saved, write a marker file and wait
to be killed. The test SIGKILLs the run once the marker exists, so the kill
point is exact and no sleep decides it."""
import os
import time

from mmdet.registry import HOOKS
from mmengine.hooks import Hook


@HOOKS.register_module()
class HangAfterCheckpointHook(Hook):
    # after CheckpointHook (VERY_LOW), so iter_k.pth is on disk
    priority = 'LOWEST'

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        hang_at = int(os.environ.get('MMEMBED_HANG_AT_ITER', '0'))
        if hang_at and runner.iter + 1 == hang_at:
            with open(os.environ['MMEMBED_HANG_MARKER'], 'w') as f:
                f.write(str(runner.iter + 1))
            time.sleep(600)  # SIGKILL arrives here
