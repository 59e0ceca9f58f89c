# Copyright (c) mmembed authors. All rights reserved.
"""Misspelt arguments and config keys: errors that name the owner, the bad
key and the closest valid keys.

Two kinds of typo reach a head from a config:

* a constructor argument (``bbox_head=dict(embed_dims=32)``). Python's own
  error names whichever ``__init__`` finally rejects it, often mmdet's
  ``AnchorFreeHead``, never the head the user wrote, and lists no valid
  names. :func:`check_init_args` (a class decorator) checks the keyword
  arguments against every ``__init__`` they can reach first;
* a ``train_cfg`` / ``test_cfg`` key (``test_cfg=dict(mask_trh=0.4)``), read
  with ``cfg.get(key, default)`` and so silently ignored.
  :func:`check_keys` rejects it.

Both suggest the closest valid keys (:func:`closest_keys`, difflib).
"""
import difflib
import functools
import inspect
from typing import (Any, Callable, FrozenSet, Iterable, List, Optional,
                    Sequence, TypeVar)

T = TypeVar('T', bound=type)


class UnknownKeyError(KeyError):
    """A config dict holds a key nothing reads."""

    def __str__(self) -> str:
        # KeyError's str() quotes its argument, which garbles a sentence
        return str(self.args[0]) if self.args else ''


class UnknownArgumentError(TypeError):
    """A constructor got a keyword argument it does not take."""


def closest_keys(key: str, valid: Iterable[str], n: int = 3) -> List[str]:
    """Up to ``n`` entries of ``valid`` that look like ``key``, best first
    (difflib ratio >= 0.6, also tried without ``_`` / case)."""
    valid = sorted(set(valid))
    matches = difflib.get_close_matches(key, valid, n=n, cutoff=0.6)
    if len(matches) < n:  # 'maskthr' vs 'mask_thr', 'MASK_THR'
        plain = {v.replace('_', '').lower(): v for v in valid}
        for hit in difflib.get_close_matches(
                key.replace('_', '').lower(), list(plain), n=n, cutoff=0.8):
            if plain[hit] not in matches:
                matches.append(plain[hit])
    return matches[:n]


def _describe(unknown: List[str], valid: Iterable[str]) -> str:
    parts = []
    for key in unknown:
        hints = closest_keys(key, valid)
        parts.append(f'{key!r} (did you mean {" or ".join(map(repr, hints))}?)'
                     if hints else repr(key))
    return ', '.join(parts)


def check_keys(owner: str,
               given: Iterable[str],
               valid: Iterable[str],
               where: str = 'test_cfg',
               note: str = '') -> None:
    """Raise :class:`UnknownKeyError` if ``given`` has keys outside
    ``valid``.

    Args:
        owner: who reads the keys, e.g. ``'EmbedMaskHead'``.
        given: the keys found (a dict works).
        valid: every key ``owner`` (and whoever shares the dict) reads.
        where: the config entry, for the message.
        note: said after the valid keys, e.g. who else reads the dict.
    """
    valid = set(valid)
    unknown = sorted(set(given) - valid)
    if unknown:
        raise UnknownKeyError(
            f'{owner}: unknown {where} key{"s" if len(unknown) > 1 else ""} '
            f'{_describe(unknown, valid)}; valid keys: {sorted(valid)}'
            f'{f" ({note})" if note else ""}. Fix the spelling or remove '
            'the key.')


@functools.lru_cache(maxsize=None)
def init_arg_names(cls: type) -> FrozenSet[str]:
    """Keyword arguments ``cls(...)`` accepts: the named parameters of each
    ``__init__`` along the MRO, down to the first one without ``**kwargs``
    (the one that passes nothing further)."""
    names = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        if klass is object:
            break
        params = inspect.signature(init).parameters.values()
        names.update(p.name for p in params
                     if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    names.discard('self')
    return frozenset(names)


def check_init_args(cls: Optional[T] = None,
                    *,
                    extra: Sequence[str] = ()) -> Any:
    """Class decorator: an unknown keyword argument to ``cls(...)`` raises
    :class:`UnknownArgumentError` naming the class actually built, the
    argument and its closest valid spellings, before any ``__init__`` runs.

    The valid names are those of ``cls`` (see :func:`init_arg_names`), so a
    subclass that sets some arguments of ``cls`` itself still works. Use
    ``@check_init_args(extra=(...))`` for names a parent swallows with
    ``**kwargs`` (mmdet's ``EmbeddingRPNHead`` takes and drops the
    ``num_classes`` / ``train_cfg`` / ``test_cfg`` the detector passes).
    """
    if cls is None:
        return functools.partial(check_init_args, extra=extra)
    original: Callable[..., None] = cls.__init__  # type: ignore[misc]
    allowed = frozenset(extra)

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        valid = init_arg_names(cls) | allowed
        unknown = sorted(set(kwargs) - valid)
        if unknown:
            # suggestions also from the subclass being built, whose own
            # arguments were consumed before they got here
            suggest = valid | init_arg_names(type(self))
            name = type(self).__name__
            raise UnknownArgumentError(
                f'{name} got unknown argument'
                f'{"s" if len(unknown) > 1 else ""} '
                f'{_describe(unknown, suggest)}. {name} takes '
                f'{sorted(suggest)}.')
        original(self, *args, **kwargs)

    cls.__init__ = __init__  # type: ignore[misc]
    return cls
