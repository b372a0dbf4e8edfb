"""`SearchSettings`: the ``search`` block once `validate_search_config` has checked it.

A read-only dict (JSON writes it, ``settings["population"]`` and ``settings.population`` read it)
that remembers the space it was checked against: handed on to `run_search` and `make_strategy`,
it is taken as it is instead of being checked again. A derived form (the objectives renamed after
the metric) is made with `replace`, never by writing into it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from supernet.core.space import SearchSpace


class SearchSettings(dict):
    """The checked search block and the `space` it was checked for (see the module docstring)."""

    def __init__(self, values: Mapping[str, Any], space: SearchSpace) -> None:
        super().__init__(values)
        self.space = space

    def checked_for(self, space: SearchSpace) -> bool:
        return self.space == space

    def replace(self, **changes: Any) -> SearchSettings:
        return SearchSettings({**self, **changes}, self.space)

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __reduce__(self) -> tuple:  # pickle and deepcopy rebuild it, not write into it
        return SearchSettings, (dict(self), self.space)

    def _read_only(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("SearchSettings is read-only: make a changed copy with .replace(key=value)")

    __setitem__ = __delitem__ = update = pop = popitem = setdefault = clear = __ior__ = _read_only  # type: ignore[assignment]
