"""alae-studio's speed: `python -m alae.tools.benchmark_studio --config demo celeba-hq256 [--browser]`.

For each model (a model file with --model, or a config's networks with seeded random weights:
the architecture sets the speed, not the weights) a real photo (scikit-image's astronaut) is
encoded once, then the first direction slider moves to new values; printed per model: the
encoding (ms), and the median over moves of the time from a slider value to the new edited image
on the server (compose + decode of one image, ms), with the images decoded per move (1: only
the edit). With --browser the same moves are made in headless Chromium against the served page
(Debian's chromium and chromedriver, Selenium): the median time from the slider's release
(the new value entered) to the new image on the page, Gradio's round trip included.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from argparse import Namespace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage.data import astronaut

from alae.config import load_config, to_dict
from alae.editing.directions import Direction, save_direction
from alae.model import LatentAutoencoder
from alae.model_files.checkpoint import save_networks_checkpoint
from alae.model_files.loading import load_networks, model_fingerprint
from alae.studio.session import Studio
from alae.studio.sources import SourceSpec
from alae.studio.view import View, compose

PHOTO_CROP = (0, 100, 256)  # top, left, side of the astronaut's face in the 512 px photo


def random_model_file(config: str, folder: Path) -> Path:
    """A networks-only checkpoint of `config`'s networks with seeded random weights."""
    cfg = load_config(config)
    torch.manual_seed(0)
    model = LatentAutoencoder(cfg)
    return save_networks_checkpoint(folder / f"{config}.pt", to_dict(cfg), None, model.state_dict(),
                                    {"format": "benchmark"})


def setup(model_path: Path, folder: Path):
    """(photo path, direction file) for the model: the photo at its resolution's crop, a seeded direction."""
    top, left, side = PHOTO_CROP
    photo = folder / "astronaut.png"
    Image.fromarray(np.ascontiguousarray(astronaut()[top:top + side, left:left + side])).save(photo)
    _, model = load_networks(model_path, verbose=False)
    vector = np.random.RandomState(0).randn(model.w_avg.shape[0])
    direction = save_direction(Direction(vector / np.linalg.norm(vector), 1.0, "fit", "benchmark",
                                         model_fingerprint(model), {}), folder / f"{model_path.stem}-direction.npz")
    return photo, direction


def server_side(model_path: Path, photo: Path, direction: Path, moves: int) -> dict:
    from alae.studio.session import find_directions

    _, model = load_networks(model_path, verbose=False)
    found, _ = find_directions([str(direction)], str(model_path), model_fingerprint(model), model.w_avg.shape[0])
    studio = Studio(model, torch.device("cpu"), str(model_path), found, {})
    start = time.perf_counter()
    first = studio.source(SourceSpec.image(photo, photo.name))
    encode_ms = 1000 * (time.perf_counter() - start)
    times, decoded = [], studio.decodes
    for k in range(moves):
        start = time.perf_counter()
        view = View(strengths=(0.1 * (k + 1),))
        studio.render(compose(first, None, view, studio.directions, studio.num_layers), first.key, view.noise)
        times.append(1000 * (time.perf_counter() - start))
    return {"px": model.resolution, "encode_ms": encode_ms, "move_ms": statistics.median(times),
            "decodes_per_move": (studio.decodes - decoded) / moves}


def in_browser(model_path: Path, photo: Path, direction: Path, moves: int) -> float:
    """Median ms from entering a slider value to the new edited image on the page."""
    import socket

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from alae.tools import studio as studio_tool

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = Namespace(model=str(model_path), directions=[str(direction)], images=[str(photo)], host="127.0.0.1",
                     port=port, refine=0, psi=0.7, cutoff=8, upload_limit_mb=20.0, device="cpu")
    page, _, url = studio_tool.serve(args, block=False)
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--window-size=1400,1900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)

    def edited_src():
        found = driver.find_elements(By.CSS_SELECTOR, "#edited img")
        return found[0].get_attribute("src") if found else None

    def wait_change(old):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            src = edited_src()
            if src and src != old:
                return src
            time.sleep(0.005)
        raise TimeoutError("the edited image did not change")

    try:
        driver.get(url)
        current = wait_change(None)
        times = []
        for k in range(moves):
            box = driver.find_element(By.CSS_SELECTOR, "#direction-0 input[type=number]")
            box.send_keys(Keys.CONTROL, "a")
            box.send_keys(f"{0.1 * (k + 1):.1f}")
            start = time.perf_counter()
            box.send_keys(Keys.ENTER)
            current = wait_change(current)
            times.append(1000 * (time.perf_counter() - start))
        return statistics.median(times)
    finally:
        driver.quit()
        page.close()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", nargs="*", default=["demo", "celeba-hq256"], help="configs, random weights")
    p.add_argument("--model", nargs="*", default=[], help="model files")
    p.add_argument("--moves", type=int, default=10, help="slider moves timed per model")
    p.add_argument("--browser", action="store_true", help="also time the moves in headless Chromium")
    args = p.parse_args(argv)
    torch.set_grad_enabled(False)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        models = [Path(m) for m in args.model] + [random_model_file(c, folder) for c in args.config]
        print(f"CPU, {torch.get_num_threads()} threads, torch {torch.__version__}, median of {args.moves} moves")
        print(f"{'model':<28} {'px':>5} {'encode ms':>10} {'move ms':>9} {'decodes':>8}"
              + (f" {'browser ms':>11}" if args.browser else ""))
        for model_path in models:
            photo, direction = setup(model_path, folder)
            r = server_side(model_path, photo, direction, args.moves)
            line = (f"{model_path.name:<28} {r['px']:>5} {r['encode_ms']:>10.1f} {r['move_ms']:>9.1f} "
                    f"{r['decodes_per_move']:>8.0f}")
            if args.browser:
                line += f" {in_browser(model_path, photo, direction, args.moves):>11.1f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
