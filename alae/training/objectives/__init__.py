"""Training objectives, one module each, chosen by name (`train.objective`): the module's name is the objective's.

An objective module defines `Options` (its config section, a subclass of
`alae.config.ObjectiveOptions`: fields, `check`, `traits`), `make_optimizers(model, cfg) ->
{name: optimizer}` and `train_step(model, optimizers, batch, phase, cfg, ctx, step) ->
{statistic: 0-d tensor}`. The other modules here are the parts objectives share.
"""
import importlib
import pkgutil
from functools import cache
from types import ModuleType


@cache
def objective_names() -> tuple[str, ...]:
    """The modules of this package that define an objective (`Options`), sorted."""
    names = (m.name for m in pkgutil.iter_modules(__path__) if not m.ispkg)
    return tuple(sorted(n for n in names if hasattr(importlib.import_module(f"{__name__}.{n}"), "Options")))


def objective_named(name: str) -> ModuleType:
    """The objective module `name` (KeyError naming the known ones otherwise)."""
    if name not in objective_names():
        raise KeyError(f"no training objective {name!r}; known: {', '.join(objective_names())}")
    return importlib.import_module(f"{__name__}.{name}")
