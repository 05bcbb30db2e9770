"""Name → factory registries, filled by decorators at import time (like timm's @register_model).

Each registry holds small entries: a function plus metadata (modality, default search space).
Adding a backbone, task, strategy or regularizer is one decorated function, no edits elsewhere.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ptbench.errors import PtbenchError, first_line


@dataclass(frozen=True)
class Entry:
    name: str
    fn: Callable[..., Any]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def space(self) -> dict[str, Any]:
        """Default Optuna search space of this item (param name → distribution spec)."""
        return self.meta.get("space", {})

    @property
    def doc(self) -> str:
        return (self.fn.__doc__ or "").strip().splitlines()[0] if self.fn.__doc__ else ""


def load_plugins() -> None:
    """Import the user's modules named in ``PTBENCH_PLUGINS`` (comma-separated), once.

    A plugin registers its own backbones, tasks, strategies or regularizers with the same
    decorators; it travels to worker processes through the environment.
    """
    for mod in filter(None, (m.strip() for m in os.environ.get("PTBENCH_PLUGINS", "").split(","))):
        try:
            importlib.import_module(mod)
        except ImportError as err:
            raise PtbenchError(f"PTBENCH_PLUGINS: cannot import '{mod}': {err}") from None
        except PtbenchError:
            raise  # a registration the registry refused says what, already
        except Exception as err:  # the plugin's own code failed (a SyntaxError names file and line)
            raise PtbenchError(
                f"PTBENCH_PLUGINS: '{mod}' failed while importing: {type(err).__name__}: {first_line(err)}"
            ) from None


class Registry:
    """A plain mapping from a name to an :class:`Entry`, with a decorator to fill it.

    ``modules`` are imported lazily on first lookup so that importing the registry (for
    example from the CLI's ``--help``) does not pull in torch.

    ``meta_keys`` are the metadata keywords its entries may carry (what other modules read from
    ``entry.meta``); a misspelled one fails at import, naming it, instead of being ignored.
    """

    def __init__(self, kind: str, modules: tuple[str, ...] = (), meta_keys: Iterable[str] | None = None):
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        self._modules = modules
        self._loaded = not modules
        self.meta_keys = None if meta_keys is None else frozenset(meta_keys)

    def register(self, name: str | None = None, **meta: Any) -> Callable:
        def deco(fn: Callable) -> Callable:
            key = name or fn.__name__
            if key in self._entries:
                raise ValueError(f"{self.kind} '{key}' registered twice")
            self._check_meta(key, fn, meta)
            self._entries[key] = Entry(key, fn, meta)
            return fn

        return deco

    def _check_meta(self, key: str, fn: Callable, meta: dict[str, Any]) -> None:
        unknown = sorted(set(meta) - self.meta_keys) if self.meta_keys is not None else []
        if unknown:
            close = difflib.get_close_matches(unknown[0], self.meta_keys, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise PtbenchError(
                f"{self.kind} '{key}' in {getattr(fn, '__module__', '?')}: unknown keyword "
                f"'{unknown[0]}'{hint}; a {self.kind} takes {', '.join(sorted(self.meta_keys))}"
            )

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for mod in self._modules:
                importlib.import_module(mod)
            load_plugins()

    def names(self, pattern: str = "*") -> list[str]:
        self._load()
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        self._load()
        return iter(self._entries[n] for n in sorted(self._entries))

    def suggest(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=1, cutoff=0.5)
        return f"; did you mean '{close[0]}'?" if close else ""

    def unknown(self, name: str) -> str:
        return f"unknown {self.kind} '{name}'{self.suggest(name)}"

    def get(self, name: str) -> Entry:
        self._load()
        if name not in self._entries:
            raise PtbenchError(self.unknown(name))
        return self._entries[name]
