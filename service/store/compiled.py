"""Hot queries rendered to SQL once, then run with new values.

peewee renders SQL in Python on every call; for the lookups every request makes that was
most of a request's time (about 250 µs a query against 10 µs to run it on SQLite). A
`Compiled` query is built once per kind of database (the SQL dialect) from a peewee query
whose values are samples; later calls pass real values in the samples' places.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import peewee

from service.store.db import current

M = TypeVar("M", bound=peewee.Model)


class _Const:
    def __init__(self, value: Any) -> None:
        self.value = value


def unconverted(value: Any) -> peewee.Value:
    """A parameter that skips the column's conversion. Needed for samples of a boolean column:
    BooleanField turns every sample into True, so two of them (or a real False) could not be
    told apart; the driver adapts the real bool value passed later."""
    return peewee.Value(value, converter=False)


class Compiled:
    def __init__(self, build: Callable[..., Any], *samples: Any) -> None:
        # Samples must be distinct values of the columns' types, so that each parameter of
        # the rendered SQL can be traced back to the argument it stands for.
        if len(set(samples)) != len(samples):
            raise ValueError("samples must be distinct")
        self._build = build
        self._samples = samples
        self._cache: dict[type, tuple[str, list[int | _Const]]] = {}
        self._lock = threading.Lock()

    def _render(self) -> tuple[str, list[int | _Const]]:
        key = type(current())
        cached = self._cache.get(key)
        if cached is None:
            with self._lock:
                sql, params = self._build(*self._samples).sql()
                order: list[int | _Const] = [
                    self._samples.index(p) if p in self._samples else _Const(p) for p in params
                ]
                # A sample the field converted on the way to SQL (a string for a boolean
                # column becomes True) would be baked in as a constant: refuse it.
                used = {p for p in order if isinstance(p, int)}
                if used != set(range(len(self._samples))):
                    missing = [self._samples[i] for i in range(len(self._samples)) if i not in used]
                    raise ValueError(f"samples not found in the rendered SQL: {missing!r}")
                cached = self._cache[key] = (sql, order)
        return cached

    def _params(self, args: tuple[Any, ...], order: list[int | _Const]) -> list[Any]:
        return [p.value if isinstance(p, _Const) else args[p] for p in order]

    def rows(self, model: type[M], *args: Any) -> list[M]:
        sql, order = self._render()
        return list(model.raw(sql, *self._params(args, order)))

    def first(self, model: type[M], *args: Any) -> M | None:
        found = self.rows(model, *args)
        return found[0] if found else None

    def execute(self, *args: Any) -> Any:
        sql, order = self._render()
        return current().execute_sql(sql, self._params(args, order))
