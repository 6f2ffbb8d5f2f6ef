"""alae: StyleALAE (Pidhorskyi et al., CVPR 2020) training system; for scripts: load_model, load_config, Model (alae/api.py)."""
__version__ = "0.1.0"
__all__ = ["Model", "load_config", "load_model"]


def __getattr__(name: str):
    """The public API, imported on first use so that `import alae.errors` stays light."""
    if name in __all__:
        from alae import api

        return getattr(api, name)
    raise AttributeError(f"module 'alae' has no attribute {name!r}")
