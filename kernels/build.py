"""`python -m alae.kernels.build`: compile the CUDA kernels without a GPU, or rerun their self-test.

    python -m alae.kernels.build --check        # compile and link every source (TORCH_CUDA_ARCH_LIST, default 8.0;9.0)
    python -m alae.kernels.build --selftest     # build (or fetch) the kernels, rerun the self-test on this GPU

The machinery is extension.py's; this module is only its command line.
"""
import argparse
import os
import sys
import time

import torch

from . import selftest
from .extension import KERNELS, BuildError, compile_check, cpp_extension_module, gpu_name


def check(verbose=False):
    """`--check`: compile_check with one line of result; 0 on success."""
    if cpp_extension_module().CUDA_HOME is None:
        print("alae.kernels.build --check: nvcc not found (set CUDA_HOME)", file=sys.stderr)
        return 2
    try:
        archs, seconds = compile_check(verbose)
    except BuildError as exc:
        print(exc, file=sys.stderr)
        return 1
    names = ", ".join(os.path.basename(s) for s in KERNELS.sources)
    print(f"alae.kernels: compiled {names} for TORCH_CUDA_ARCH_LIST={archs} "
          f"in {seconds:.0f} s (CUDA initialized: {torch.cuda.is_initialized()})")
    return 0


def run_selftest():
    """`--selftest`: build or fetch the kernels, rerun the self-test on the current GPU and record
    it, one line per op; 0 when every op passed."""
    if not torch.cuda.is_available():
        print("alae.kernels.build --selftest: no CUDA GPU (torch.cuda.is_available() is False), so there is "
              "nothing to test; the reference ops are used", file=sys.stderr)
        return 2
    device = torch.device("cuda", torch.cuda.current_device())
    start = time.perf_counter()
    try:
        path = KERNELS.load()
    except BuildError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"alae.kernels: {'built' if KERNELS.built_here else 'found in the cache'}: {os.path.dirname(path)} "
          f"({time.perf_counter() - start:.1f} s)")
    results = KERNELS.selftest_results(device, rerun=True)
    for op, result in results.items():
        print(f"{op} on {gpu_name(device)}: {selftest.summary(result)}")
    return 0 if all(r["passed"] for r in results.values()) else 1


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m alae.kernels.build", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compile every CUDA source, without a GPU")
    parser.add_argument("--selftest", action="store_true",
                        help="build (or fetch) the kernels and rerun their self-test on the current GPU")
    parser.add_argument("--verbose", action="store_true", help="show the compiler commands")
    args = parser.parse_args(argv)
    if args.check:
        return check(args.verbose)
    if args.selftest:
        return run_selftest()
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
