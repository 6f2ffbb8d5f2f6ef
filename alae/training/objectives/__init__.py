"""Training objectives, one module each behind one interface, chosen by name (`objective_named`).

An objective module has `make_optimizers(model, cfg) -> {name: optimizer}` and
`train_step(model, optimizers, batch, phase, cfg, ctx, step) -> {statistic: 0-d tensor}`.
The names are alae.config.OBJECTIVES (`train.objective`).
"""
from types import ModuleType

from alae.training.objectives import aae, alae, vae, wae_gan, wae_mmd

OBJECTIVES: dict[str, ModuleType] = {"alae": alae, "vae": vae, "aae": aae, "wae_mmd": wae_mmd, "wae_gan": wae_gan}


def objective_named(name: str) -> ModuleType:
    """The objective module registered under `name` (KeyError naming the known ones otherwise)."""
    if name not in OBJECTIVES:
        raise KeyError(f"no training objective {name!r}; known: {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]
