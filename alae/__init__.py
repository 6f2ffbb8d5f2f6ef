"""alae: StyleALAE (Pidhorskyi et al., CVPR 2020) training system."""
__version__ = "0.1.0"
