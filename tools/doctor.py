"""alae-doctor: what this machine offers alae, one line per item, to paste into a bug report.

    alae-doctor
    alae-doctor --config ffhq --data /data/ffhq-lmdb --world-size 8
    alae-doctor --config demo --require gpu,kernels --json
    alae-doctor --acceptance --out acceptance --budget-s 480

--acceptance proves a GPU machine trains correctly and fast (`alae.acceptance.run`: kernels,
the networks through them, step speed and memory, host syncs, torchrun equality, the loader)
and writes report.json and report.md; without a CUDA GPU it runs the parts that need none.

Reports Python, torch, CUDA (driver, GPUs), nvcc and ninja, the fused kernels (built or found in
the cache where a GPU is, compiled only with --build where none is) and their self-test, the
optional packages and weight files. With --config (and --data, else the config's data.path):
whether the config is valid, whether the data opens at every resolution it trains at and holds
enough images, and on a GPU the memory of one training step per lod at one GPU's share of the
global batch (`--world-size`).

Exit status 0 when everything needed is present: the config, its data and memory, lmdb, and
whatever --require names (gpu, kernels, inception, lpips, dlib); 1 otherwise. Items not needed
are still reported (marked --) but never fail.
"""
from __future__ import annotations

import argparse
import ctypes
import importlib
import json
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from importlib import metadata

import torch

import alae.distributed as distributed
from alae import train
from alae.acceptance.run import acceptance
from alae.cli import ToolError, run_tool
from alae.config import ConfigError, check_world_size, load_config
from alae.faces.landmarks import AlignmentError, predictor_path
from alae.kernels import extension, selftest
from alae.metrics.weight_files import INCEPTION, LPIPS
from alae.training.data import open_images, resolve_data_path
from alae.training.timing import time_lod, training_state

PROG = "alae-doctor"
REQUIREMENTS = ("gpu", "kernels", "inception", "lpips", "dlib")
ALWAYS = "always"  # the need of items nothing can do without (given a config: it, its data, its memory)
MARKS = {"ok": "ok", "info": "", "missing": "--", "FAIL": "FAIL"}
DETAIL_LINES = 40  # lines of an item's detail (e.g. compiler output) the text report shows


@dataclass
class Item:
    """One line of the report: `ok` True / False / None (information), `need` the requirement it
    belongs to (one of REQUIREMENTS, ALWAYS, or None), `detail` more lines (compiler output)."""

    name: str
    text: str
    ok: bool | None = None
    need: str | None = None
    detail: str = ""
    status: str = "info"  # set by `judge`: ok, info, missing (not needed) or FAIL (needed)


def judge(items: list[Item], required: set[str]) -> list[Item]:
    for item in items:
        needed = item.need == ALWAYS or item.need in required
        item.status = "info" if item.ok is None else "ok" if item.ok else "FAIL" if needed else "missing"
    return items


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


# --- the machine ----------------------------------------------------------------------------

def _driver() -> str:
    """The NVIDIA driver's version (nvidia-smi) and the CUDA version it supports (libcuda)."""
    try:
        libcuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return "no CUDA driver (libcuda.so.1 not found)"
    version = ctypes.c_int()
    supports = (f"supports CUDA {version.value // 1000}.{version.value % 1000 // 10}"
                if libcuda.cuDriverGetVersion(ctypes.byref(version)) == 0 else "cuDriverGetVersion failed")
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return f"driver {supports} (nvidia-smi not found)"
    try:
        out = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30).stdout.split()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"driver {supports} (nvidia-smi failed: {exc})"
    return f"driver {out[0] if out else 'unknown'}, {supports}"


def _cudnn() -> str:
    v = torch.backends.cudnn.version()  # e.g. 92400 for 9.24.0
    return f"{v // 10000}.{v % 10000 // 100}.{v % 100}" if v else "none"


def machine_items() -> list[Item]:
    items = [Item("python", f"{platform.python_version()} ({sys.executable}), {platform.system()} {platform.machine()}"),
             Item("torch", f"{torch.__version__}, built with CUDA {torch.version.cuda or 'none (CPU-only build)'}, "
                           f"cuDNN {_cudnn()}")]
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    items.append(Item("CUDA", (f"available, {count} GPU(s); " if count else "not available: no CUDA GPU; ") + _driver(),
                      ok=count > 0, need="gpu"))
    for i in range(count):
        p = torch.cuda.get_device_properties(i)
        items.append(Item(f"GPU {i}", f"{p.name}, {p.total_memory / 2**30:.1f} GiB, compute capability "
                                      f"{p.major}.{p.minor}"))
    cuda_home = extension.cpp_extension_module().CUDA_HOME
    nvcc = None if cuda_home is None else shutil.which("nvcc", path=f"{cuda_home}/bin")
    items.append(Item("nvcc", f"{nvcc}, {extension.nvcc_version(extension.cpp_extension_module())}" if nvcc
                      else "not found (set CUDA_HOME to the CUDA toolkit): the kernels cannot be built",
                      ok=nvcc is not None, need="kernels"))
    ninja = shutil.which("ninja")
    version = subprocess.run([ninja, "--version"], capture_output=True, text=True, timeout=30).stdout.strip() if ninja else ""
    items.append(Item("ninja", f"{version} ({ninja})" if ninja else "not found (pip install ninja): the kernels "
                      "cannot be built", ok=ninja is not None, need="kernels"))
    return items


def kernel_items(gpu_count: int, compile_without_gpu: bool) -> list[Item]:
    """The build (only where a GPU is, or compile-only on request) and the self-test per GPU model."""
    if not gpu_count:
        items = [Item("kernels", "no CUDA GPU: kernels not built, the reference ops will be used", ok=False,
                      need="kernels"),
                 Item("self-test", "no CUDA GPU, not run", ok=False, need="kernels")]
        if compile_without_gpu:
            try:
                archs, seconds = extension.compile_check()
                items[0] = Item("kernels", f"compiled for TORCH_CUDA_ARCH_LIST={archs} in {seconds:.0f} s (no CUDA "
                                           f"GPU, so not run; the reference ops will be used)", ok=True)
            except extension.BuildError as exc:
                items[0] = Item("kernels", f"compiling failed: {str(exc).splitlines()[0]}", ok=False, need=ALWAYS,
                                detail=str(exc))
        return items
    start = time.perf_counter()
    try:
        path = extension.KERNELS.load()
    except extension.BuildError as exc:
        return [Item("kernels", f"build failed, the reference ops will be used: {str(exc).splitlines()[0]}",
                     ok=False, need="kernels", detail=str(exc))]
    how = "built now" if extension.KERNELS.built_here else "found in the cache"
    items = [Item("kernels", f"{how} in {time.perf_counter() - start:.1f} s: {path}", ok=True)]
    tested = set()
    for i in range(gpu_count):
        device = torch.device("cuda", i)
        gpu = extension.gpu_name(device)
        if gpu in tested:
            continue
        tested.add(gpu)
        recorded = extension.KERNELS.recorded_selftest(gpu)
        results = recorded or extension.KERNELS.selftest_results(device)
        for op, result in results.items():
            fallback = "" if result["passed"] else f"; {op} uses impl='ref' (impl='cuda' raises)"
            items.append(Item(f"self-test {op}", f"{selftest.summary(result)}{fallback} [{gpu}, "
                                                 f"{'recorded' if recorded else 'run now'}]",
                              ok=result["passed"], need="kernels"))
    return items


def _package(name: str, module: str, dists: tuple[str, ...], need: str) -> Item:
    """Whether `module` imports, and the version of the first of `dists` installed."""
    try:
        imported = importlib.import_module(module)
    except Exception as exc:  # ImportError, or a broken install raising anything at import
        return Item(name, f"not importable ({_first_line(exc)}): pip install {dists[0]}", ok=False, need=need)
    for dist in dists:
        try:
            return Item(name, f"{metadata.version(dist)} ({dist})", ok=True, need=need)
        except metadata.PackageNotFoundError:
            continue
    return Item(name, f"{getattr(imported, '__version__', 'version unknown')} (not from {', '.join(dists)})",
                ok=True, need=need)


def package_and_weight_items() -> list[Item]:
    items = [_package("lmdb", "lmdb", ("lmdb",), ALWAYS),
             _package("clean-fid", "cleanfid", ("clean-fid",), "inception"),
             _package("dlib", "dlib", ("dlib-bin", "dlib"), "dlib")]
    for need, weights in (("inception", INCEPTION), ("lpips", LPIPS)):
        path = weights.find()
        items.append(Item(f"{need} weights", str(path) if path else weights.missing_message(),
                          ok=path is not None, need=need))
    try:
        items.append(Item("dlib 68-point model", str(predictor_path()), ok=True, need="dlib"))
    except AlignmentError as exc:
        items.append(Item("dlib 68-point model", f"not found: {exc}", ok=False, need="dlib"))
    return items


# --- a config and its data --------------------------------------------------------------------

def data_items(cfg, data: str | None) -> list[Item]:
    """Whether the data opens at every resolution `cfg` trains at, and has enough images."""
    try:
        path = resolve_data_path(cfg, data)
    except ConfigError as exc:
        return [Item("data", str(exc), ok=False, need=ALWAYS)]
    items = [Item("data", str(path))]
    count = None
    for lod in range(cfg.model.num_lods):
        resolution = cfg.model.resolution_at(lod)
        try:
            images = open_images(path, resolution)
            for index in (0, len(images) - 1):  # decodes the first and the last image
                images[index]
        except Exception as exc:  # DatasetError, lmdb errors, a damaged record: the report goes on
            items.append(Item(f"data {resolution} px", f"does not open: {exc}", ok=False, need=ALWAYS))
            continue
        count = len(images)
        if images.channels != cfg.model.image_channels:
            items.append(Item(f"data {resolution} px", f"{count} images with {images.channels} channels, but "
                                                       f"model.image_channels = {cfg.model.image_channels}",
                              ok=False, need=ALWAYS))
        else:
            items.append(Item(f"data {resolution} px", f"opens: {count} images", ok=True))
    if count is not None:
        train, largest = count - cfg.data.holdout, max(cfg.train.batch_per_lod)
        items.append(Item("data images", f"{count} = {train} for training + {cfg.data.holdout} held out "
                                         f"(data.holdout); the largest global batch is {largest}",
                          ok=largest <= train, need=ALWAYS))
    return items


def memory_per_lod(cfg, device: torch.device, world_size: int):
    """(lod, batch, peak bytes or None, seconds or the error) per lod: one training step at alpha 1 of
    one GPU's share of the global batch (benchmark_training.time_lod), the EMA copy resident."""
    ctx = distributed.Context(rank=0, local_rank=0, world_size=1, device=device)
    model, ema, optimizers = training_state(cfg, device)
    rows = []
    for lod in range(cfg.model.num_lods):
        batch = cfg.train.batch_per_lod[lod] // world_size
        try:
            r = time_lod(model, optimizers, cfg, ctx, lod, batch, warmup=0, steps=1)
            rows.append((lod, batch, r["peak_bytes"], r["seconds"]))
        except torch.cuda.OutOfMemoryError as exc:
            rows.append((lod, batch, None, _first_line(exc)))
            torch.cuda.empty_cache()
    del model, ema, optimizers
    return rows


def config_items(name: str, overrides: list[str], data: str | None, world_size: int, gpu_count: int) -> list[Item]:
    try:
        cfg = load_config(name, overrides)
        check_world_size(cfg, world_size)
    except (ConfigError, OSError) as exc:
        return [Item("config", f"{name}: {exc}", ok=False, need=ALWAYS)]
    m = cfg.model
    items = [Item("config", f"{name}: {m.resolution} px ({m.num_lods} lods), global batch per lod "
                            f"{cfg.train.batch_per_lod}, {world_size} GPU(s)", ok=True)]
    items += data_items(cfg, data)
    if not gpu_count:
        return items + [Item("memory per lod", "no GPU, not measured")]
    for lod, batch, peak, seconds in memory_per_lod(cfg, torch.device("cuda", 0), world_size):
        what = f"memory lod {lod} ({m.resolution_at(lod)} px, {batch} per GPU)"
        items.append(Item(what, f"{peak / 2**30:.2f} GiB peak allocated, {1000 * seconds:.0f} ms/step" if peak is not None
                          else f"does not fit: {seconds}", ok=peak is not None, need=ALWAYS))
    return items


# --- the report -------------------------------------------------------------------------------

def report(args) -> list[Item]:
    required = set(filter(None, (r.strip() for r in args.require.split(","))))
    unknown = required - set(REQUIREMENTS)
    if unknown:
        raise ToolError(f"--require: unknown {', '.join(sorted(unknown))}; choose from {', '.join(REQUIREMENTS)}")
    if args.data and not args.config:
        raise ToolError("--data needs --config (the resolutions to check come from the config)")
    if args.world_size < 1:
        raise ToolError(f"--world-size must be >= 1, got {args.world_size}")
    items = machine_items()
    gpu_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    items += kernel_items(gpu_count, args.build)
    items += package_and_weight_items()
    if args.config:
        items += config_items(args.config, args.overrides, args.data, args.world_size, gpu_count)
    return judge(items, required)


def print_text(items: list[Item]) -> None:
    width = max(len(item.name) for item in items)
    for item in items:
        print(f"{MARKS[item.status]:<4} {item.name:<{width}}  {item.text}")
        lines = item.detail.strip().splitlines()[1:]
        for line in lines[-DETAIL_LINES:]:
            print(f"{'':<{width + 7}}{line}")
    problems = [item.name for item in items if item.status == "FAIL"]
    print(f"{PROG}: " + (f"{len(problems)} needed item(s) missing or failing: {', '.join(problems)}" if problems
                         else "everything needed is present"))


def as_rows(items: list[Item], required: set[str]) -> list[tuple[str, str, str]]:
    return [(item.status, item.name, item.text) for item in judge(items, required)]


def run_acceptance(args) -> int:
    if args.config or args.data or args.json or args.build:
        raise ToolError("--acceptance takes only --out and --budget-s (it chooses its configs and data)")
    if args.budget_s <= 0:
        raise ToolError(f"--budget-s must be positive, got {args.budget_s}")
    gpu_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return acceptance(args.out, args.budget_s,
                      environment=lambda: as_rows(machine_items() + package_and_weight_items(), set()),
                      kernels=lambda: as_rows(kernel_items(gpu_count, False), {"kernels"}),
                      train_main=train.main)


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="a built-in config name or YAML path: check what it needs")
    p.add_argument("--data", help="the training data (default: the config's data.path; 'lfw' = the demo faces)")
    p.add_argument("--world-size", type=int, default=1, help="GPUs the config will train on (memory per GPU)")
    p.add_argument("--require", default="", help=f"comma-separated, from {','.join(REQUIREMENTS)}: fail without them")
    p.add_argument("--build", action="store_true", help="without a GPU: compile the kernels (minutes), not run")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of text")
    p.add_argument("--acceptance", action="store_true",
                   help="the GPU acceptance run: correctness, speed, memory, syncs, multi-GPU, loader (minutes)")
    p.add_argument("--out", default="acceptance", help="with --acceptance: the folder for report.json and report.md")
    p.add_argument("--budget-s", type=float, default=480, help="with --acceptance: the time it may take (seconds)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, as in alae-train")
    return p.parse_intermixed_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)

    def body():
        if args.acceptance:
            return run_acceptance(args)
        items = report(args)
        failed = any(item.status == "FAIL" for item in items)
        if args.json:
            print(json.dumps({"items": [asdict(item) for item in items], "exit_status": int(failed)}, indent=1))
        else:
            print_text(items)
        return int(failed)

    return run_tool(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
