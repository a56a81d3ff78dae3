"""A tiny frozen, keyword-only value base class.

The option classes would naturally be ``@dataclass(frozen=True, kw_only=True, slots=True)``, but
importing :mod:`dataclasses` (which imports :mod:`inspect`) and generating the classes costs more
than ``import ssl`` itself, and ``import securelink`` must stay cheap.  This gives the same
behaviour for what the options need: immutability, equality and hashing by value, a ``repr``
that hides secrets, ``replace()`` (also ``copy.replace`` on Python 3.13+), and pickling.
"""

from __future__ import annotations

from .errors import FrozenInstanceError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, ClassVar, Self

    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_kwargs: object) -> object:
        """Mark subclasses as frozen dataclass-like values for type checkers (no-op here)."""
        return lambda cls: cls


def _rebuild(cls: type[Frozen], kwargs: dict[str, Any]) -> Frozen:
    return cls(**kwargs)


@dataclass_transform(frozen_default=True, kw_only_default=True)
class Frozen:
    """Base of the option classes: fields listed in ``_fields`` are set once, by ``__init__``."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    #: The attributes equality and hashing use; normalised forms, so that ``cert=x`` and
    #: ``cert=(x,)`` are equal (and share a context).  Defaults to ``_fields``.
    _compare: ClassVar[tuple[str, ...]] = ()
    #: Fields whose values are secret or bulky, shown only as a placeholder by ``repr``.
    _hidden: ClassVar[frozenset[str]] = frozenset()

    def _set(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise self._frozen(name, "changed")

    def __delattr__(self, name: str) -> None:
        raise self._frozen(name, "deleted")

    def _frozen(self, name: str, done: str) -> FrozenInstanceError:
        type_name = type(self).__name__
        if name in self._fields:
            hint = f"Make a changed copy with .replace({name}=...)."
        else:
            hint = f"{type_name} has no field {name!r}; make changed copies with .replace()."
        return FrozenInstanceError(
            f"{type_name} is frozen: {name!r} cannot be {done}.",
            type_name=type_name,
            field=name,
            hint=hint,
        )

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self._compare or self._fields)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Frozen)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self), *self._values()))

    def __repr__(self) -> str:
        parts = []
        for name in self._fields:
            value = getattr(self, name)
            if name in self._hidden and value is not None:
                shown = "<hidden>" if name == "password" else _placeholder(value)
            else:
                shown = repr(value)
            parts.append(f"{name}={shown}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def replace(self, **changes: Any) -> Self:
        """Return a copy with the given fields changed, checked like a new object.

        Raises:
            TypeError: a name is not a field.
            ConfigurationError: the changed combination is invalid.
        """
        unknown = set(changes) - set(self._fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {sorted(unknown)[0]!r}")
        kwargs = {name: getattr(self, name) for name in self._fields}
        kwargs.update(changes)
        return type(self)(**kwargs)

    __replace__ = replace  # copy.replace() on Python 3.13+

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), {name: getattr(self, name) for name in self._fields}))


def _placeholder(value: object) -> str:
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, tuple):
        return "(" + ", ".join(_placeholder(v) for v in value) + ")"
    if isinstance(value, str) or hasattr(value, "__fspath__"):
        return repr(value)  # a path is not secret
    return f"<{type(value).__name__}>"
