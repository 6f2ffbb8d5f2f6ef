"""Packaging for alae.

`kernels/`, `datasets/` and `tools/` are top-level folders installed as `alae.kernels`,
`alae.datasets` and `alae.tools` (the bare names collide with popular PyPI packages);
`configs/` is installed as `alae.configs` so `--config demo` resolves after a plain install.
"""
from setuptools import setup

setup(
    name="alae",
    version="0.1.0",
    description="StyleALAE (Adversarial Latent Autoencoder) training system",
    python_requires=">=3.10",
    packages=["alae", "alae.kernels", "alae.datasets", "alae.tools", "alae.configs"],
    package_dir={
        "alae": "alae",
        "alae.kernels": "kernels",
        "alae.datasets": "datasets",
        "alae.tools": "tools",
        "alae.configs": "configs",
    },
    package_data={"alae.kernels": ["*.cu", "*.cpp", "*.h", "*.cuh"], "alae.configs": ["*.yaml"]},
    install_requires=[
        "torch",
        "torchvision",
        "ninja",
        "lmdb",
        "pillow",
        "clean-fid",
        "tensorboard",
        "tqdm",
        "pyyaml",
        "numpy",
        "scikit-image",
    ],
    extras_require={"test": ["pytest"]},
    entry_points={
        "console_scripts": [
            "alae-train=alae.train:main",
            "alae-prepare=alae.datasets.prepare:main",
            "alae-convert=alae.tools.convert:main",
        ]
    },
)
