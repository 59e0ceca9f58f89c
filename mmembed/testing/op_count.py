# Copyright (c) mmembed authors. All rights reserved.
"""Count what a call launches: aten ops (torch.profiler) and ops that would
make the host wait for a GPU.

Used by the mask-path tests of every head (EmbedMask today, BlendMask and
ISTR as they land): the mask path must launch a number of ops that does not
grow with the number of detections, and must not synchronise with the
device between the box head's detections and the pasted masks.
"""
import contextlib
from collections import Counter
from typing import Any, Callable, Iterator, List

import torch
from torch.utils._python_dispatch import TorchDispatchMode


@contextlib.contextmanager
def _wrapped(owner: Any, attr: str, name: str) -> Iterator[None]:
    original = getattr(owner, attr)

    def wrapper(*args, **kwargs):
        with torch.profiler.record_function(name):
            return original(*args, **kwargs)

    setattr(owner, attr, wrapper)
    try:
        yield
    finally:
        # the instance attribute shadowed the class method; drop it again
        if attr in vars(owner):
            delattr(owner, attr)
        else:
            setattr(owner, attr, original)


def count_aten_ops(owner: Any, attr: str, call: Callable[[], Any]) -> Counter:
    """aten ops (by name) launched inside ``owner.attr`` while ``call()``
    runs, counted as the H100 probe of issue 8 counted them: every CPU-side
    ``aten::`` event, nested ones included, whose start lies inside a call
    of ``owner.attr``; except the events inside an ``aten::convolution``
    (counted once itself): which backend runs a convolution (oneDNN,
    ``_slow_conv2d``, NNPACK, cuDNN) and the ops it launches depend on the
    sizes and on the number of threads, not on the model's graph.
    """
    tag = f'mmembed_count::{type(owner).__name__}.{attr}'
    with _wrapped(owner, attr, tag):
        with torch.profiler.profile(
                activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            call()
    events = prof.events()
    ranges = [(e.time_range.start, e.time_range.end) for e in events
              if e.name == tag]
    if not ranges:
        raise RuntimeError(f'{tag} was never called')
    inside = [
        e for e in events if e.name.startswith('aten::') and any(
            start <= e.time_range.start <= end for start, end in ranges)
    ]
    convs = [(id(e), e.time_range.start, e.time_range.end) for e in inside
             if e.name == 'aten::convolution']
    return Counter(e.name for e in inside if not any(
        id(e) != conv and start <= e.time_range.start <= end
        for conv, start, end in convs))


# aten ops that copy a device value to the host (or need a data-dependent
# output size) when their inputs live on a GPU
_SYNCING_OPS = {
    'aten._local_scalar_dense',  # .item(), float(t), int(t), bool(t)
    'aten.is_nonzero',
    'aten.nonzero',
    'aten.masked_select',
    'aten.unique_consecutive',
    'aten._unique',
    'aten._unique2',
    'aten.unique_dim',
    'aten.equal',
    'aten.allclose',
    'aten.masked_scatter',
}


class HostSyncRecorder(TorchDispatchMode):
    """Records ops that would synchronise a CUDA stream with the host.

    A CPU stand-in for ``torch.cuda.set_sync_debug_mode('error')``: it sees
    the ops that read device values on the host (``.item()``, ``nonzero``,
    boolean indexing, ``repeat_interleave`` without ``output_size``,
    ``unique``). It cannot see ``.tolist()`` / ``.cpu()`` of a CPU tensor
    (no op runs) nor host-to-device copies, so the CUDA check stays the
    real proof where a GPU exists.
    """

    def __init__(self) -> None:
        super().__init__()
        self.found: List[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = str(func.overloadpacket.__name__)
        qualified = f'aten.{name}'
        if qualified in _SYNCING_OPS:
            self.found.append(qualified)
        elif name == 'repeat_interleave' and kwargs.get(
                'output_size') is None and (len(args) < 3 or args[2] is None):
            # repeat_interleave(repeats_tensor) must know the output length
            if isinstance(args[0], torch.Tensor) and args[0].dim() > 0 and \
                    args[0].dtype in (torch.long, torch.int):
                self.found.append('aten.repeat_interleave(no output_size)')
        elif name in ('index', 'index_put', 'index_put_'):
            indices = args[1] if len(args) > 1 else kwargs.get('indices', ())
            if any(
                    isinstance(i, torch.Tensor) and i.dtype == torch.bool
                    for i in indices or ()):
                self.found.append(f'aten.{name}(bool mask)')
        return func(*args, **kwargs)
