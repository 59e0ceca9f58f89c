# Copyright (c) mmembed authors. All rights reserved.
"""Say how much of a model a checkpoint filled, and refuse the wrong model.

mmengine loads checkpoints with ``strict=False`` everywhere a user loads
weights (``tools/test.py`` and ``load_from`` through the Runner,
``init_detector``, ``DetInferencer``, ``init_cfg=dict(type='Pretrained')``)
and reports a mismatch only as a long warning. A checkpoint of another
model then loads "successfully" and the detector draws confident-looking
noise. All those paths end in ``mmengine.runner.checkpoint.load_state_dict``;
:func:`install_load_check` wraps it once, so every entry point:

* prints how many of the model's parameter tensors (and values) the
  checkpoint filled, and which parts of the model got nothing;
* raises :class:`CheckpointMismatchError` when the checkpoint is of a
  different model: fewer than half of the model's parameter values load,
  or a top-level part (``backbone``, ``bbox_head`` ...) loads fewer than
  half of its tensors while the checkpoint holds weights that fit nowhere
  in the model (other keys or other shapes). Parts the checkpoint simply
  lacks, with nothing left over, are what stage-wise training does
  (a DeepMask checkpoint for a SharpMask model) and only get reported;
  so does fine-tuning, where only the class layers differ in shape.

Allow such a load with :func:`allow_partial_load` (a context manager), the
environment variable ``MMEMBED_ALLOW_PARTIAL_LOAD=1`` or the
``--allow-partial-load`` flag of the tools.
"""
import contextlib
import os
from collections import defaultdict
from typing import Any, Dict, Iterator, List, Mapping, NamedTuple, Optional

from torch import nn

ENV_ALLOW = 'MMEMBED_ALLOW_PARTIAL_LOAD'
MIN_LOADED_FRACTION = 0.5
_INSTALLED = False


class CheckpointMismatchError(RuntimeError):
    """A checkpoint does not belong to the model it is loaded into."""


class LoadReport(NamedTuple):
    """What a state dict fills in a model (before it is loaded).

    Attributes:
        model_name: class name of the model.
        num_tensors, num_loaded: parameter and buffer tensors of the model
            (without BN's ``num_batches_tracked``) and how many of them the
            state dict has under the same name and shape.
        num_values, num_loaded_values: the same, counted in elements.
        parts: top-level part (``backbone``, ``bbox_head`` ...) ->
            (loaded, total) tensors.
        mismatched: model keys found with another shape.
        unexpected: state dict keys the model does not have.
    """
    model_name: str
    num_tensors: int
    num_loaded: int
    num_values: int
    num_loaded_values: int
    parts: Dict[str, List[int]]
    mismatched: List[str]
    unexpected: List[str]

    @property
    def fraction(self) -> float:
        """Share of the model's parameter values that load."""
        return self.num_loaded_values / max(self.num_values, 1)

    def conflicting_parts(self) -> List[str]:
        """Parts that load fewer than half of their tensors while the state
        dict holds weights that fit nowhere: another model's part."""
        if not (self.unexpected or self.mismatched):
            return []
        return [
            name for name, (loaded, total) in self.parts.items()
            if loaded < MIN_LOADED_FRACTION * total
        ]

    def empty_parts(self) -> List[str]:
        return [
            name for name, (loaded, total) in self.parts.items()
            if loaded == 0 and total
        ]

    def summary(self) -> str:
        """One line: how much of the model the state dict fills."""
        text = (f'{self.num_loaded} of {self.num_tensors} parameter tensors '
                f'of {self.model_name} match ({100 * self.fraction:.1f}% of '
                f'{self.num_values:,} values)')
        empty = self.empty_parts()
        if empty and len(self.parts) > 1:
            text += f'; nothing for {", ".join(empty)}'
        if self.mismatched:
            text += (f'; {len(self.mismatched)} with another shape '
                     f'(e.g. {_examples(self.mismatched)})')
        if self.unexpected:
            text += (f'; {len(self.unexpected)} checkpoint keys the model '
                     f'does not have (e.g. {_examples(self.unexpected)})')
        return text


def _examples(keys: List[str], n: int = 3) -> str:
    return ', '.join(keys[:n]) + (', ...' if len(keys) > n else '')


def _unwrap(module: nn.Module) -> nn.Module:
    """The model inside DDP / TTA wrappers, as mmengine's loader does."""
    from mmengine.model import BaseTTAModel, is_model_wrapper
    while is_model_wrapper(module) or isinstance(module, BaseTTAModel):
        module = module.module
    return module


def compare_state_dict(module: nn.Module,
                       state_dict: Mapping[str, Any]) -> LoadReport:
    """What loading ``state_dict`` into ``module`` would fill (by name and
    shape, as ``load_state_dict`` matches them)."""
    model = _unwrap(module)
    own = {
        key: value
        for key, value in model.state_dict().items()
        if not key.endswith('num_batches_tracked')
    }
    parts: Dict[str, List[int]] = defaultdict(lambda: [0, 0])
    mismatched, num_loaded, num_values, num_loaded_values = [], 0, 0, 0
    for key, value in own.items():
        part = parts[key.split('.', 1)[0]]
        part[1] += 1
        num_values += value.numel()
        theirs = state_dict.get(key)
        if theirs is None or not hasattr(theirs, 'shape'):
            continue
        if tuple(theirs.shape) != tuple(value.shape):
            mismatched.append(key)
            continue
        part[0] += 1
        num_loaded += 1
        num_loaded_values += value.numel()
    unexpected = [
        key for key in state_dict
        if key not in own and not key.endswith('num_batches_tracked')
    ]
    return LoadReport(type(model).__name__, len(own), num_loaded, num_values,
                      num_loaded_values, dict(parts), mismatched, unexpected)


def partial_load_allowed() -> bool:
    """True when ``MMEMBED_ALLOW_PARTIAL_LOAD`` is set to a true value."""
    return os.environ.get(ENV_ALLOW, '').lower() in ('1', 'true', 'yes')


@contextlib.contextmanager
def allow_partial_load(allowed: bool = True) -> Iterator[None]:
    """Let checkpoints of other models load inside the ``with`` block
    (sets ``MMEMBED_ALLOW_PARTIAL_LOAD``, so subprocesses inherit it)."""
    old = os.environ.get(ENV_ALLOW)
    os.environ[ENV_ALLOW] = '1' if allowed else '0'
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ENV_ALLOW, None)
        else:
            os.environ[ENV_ALLOW] = old


def check_load(report: LoadReport, source: Optional[str] = None) -> None:
    """Raise :class:`CheckpointMismatchError` when ``report`` says the state
    dict is of a different model and partial loads are not allowed."""
    conflicts = report.conflicting_parts()
    if report.fraction >= MIN_LOADED_FRACTION and not conflicts:
        return
    if partial_load_allowed():
        return
    if report.fraction < MIN_LOADED_FRACTION:
        why = (f'Fewer than {MIN_LOADED_FRACTION:.0%} of the model\'s '
               'parameter values would load')
    else:
        one = len(conflicts) == 1
        why = (f'{"Part" if one else "Parts"} {", ".join(conflicts)} would '
               f'get fewer than half of {"its" if one else "their"} tensors '
               'while the checkpoint holds weights that fit nowhere in the '
               'model')
    where = f' {source}' if source else ''
    raise CheckpointMismatchError(
        f'Refusing to load the checkpoint{where}: {report.summary()}. '
        f'{why}, so it is probably of a different '
        'model or config. Use the config the checkpoint was trained with (a '
        "checkpoint saved by mmengine stores it in meta['cfg']), or convert "
        'an official checkpoint with tools/model_converters/. To load it '
        'anyway (e.g. to fine-tune from part of it), pass '
        f'--allow-partial-load or set {ENV_ALLOW}=1.')


def install_load_check() -> None:
    """Wrap ``mmengine.runner.checkpoint.load_state_dict`` (which every
    mmengine loading path calls by its module-global name) with
    :func:`compare_state_dict` + :func:`check_load`. Idempotent."""
    global _INSTALLED
    if _INSTALLED:
        return
    import functools

    from mmengine.logging import print_log
    from mmengine.runner import checkpoint as mmengine_checkpoint

    original = mmengine_checkpoint.load_state_dict

    @functools.wraps(original)
    def load_state_dict(module: nn.Module,
                        state_dict: Mapping[str, Any],
                        strict: bool = False,
                        logger: Any = None) -> None:
        report = compare_state_dict(module, state_dict)
        check_load(report)
        # where mmengine writes its own load messages (None: print)
        print_log(f'mmembed: loading a checkpoint: {report.summary()}',
                  logger=logger)
        original(module, state_dict, strict, logger)

    mmengine_checkpoint.load_state_dict = load_state_dict
    _INSTALLED = True
