"""The fused CUDA kernels as a torch extension: building, caching, self-testing, and choosing
between them and the reference ops.

`impl` (an argument of every op) is one of:
- ``'ref'``: pure PyTorch reference, any device, exact first and second derivatives;
- ``'cuda'``: the fused CUDA kernels; an error for a CPU tensor or when they fail to build;
- ``'auto'``: ``'cuda'`` when the input is on a CUDA device and the kernels build, else
  ``'ref'`` (a failed build gives one warning with the compiler's output).
The environment variable ``ALAE_KERNELS=ref|cuda|auto`` overrides the argument everywhere.

The kernels are compiled with ninja through ``torch.utils.cpp_extension.load`` on first use,
at most once per process, into ``$TORCH_EXTENSIONS_DIR`` (default
``~/.cache/alae/torch_extensions``) under a key hashing the sources, build flags, torch, CUDA
and Python versions and the GPU architectures. Concurrent processes (torchrun ranks)
serialize on an ``fcntl.flock`` lock, which the OS drops when its holder dies, so a killed
build never leaves a lock behind; each build happens in a private temporary folder renamed
into place atomically, so a reader never sees a half-built cache entry.

The first time a process picks ``'cuda'`` for an op on a GPU model, the kernels' self-test
(selftest.py) decides: its results are read from ``selftest.json`` in the build's cache entry
(keyed by GPU model, since one build can serve several), else the battery runs on that GPU
(well under a second) and its results are written there atomically. An op that failed it is,
under ``'auto'``, one warning naming the op, the case and the error, then ``'ref'`` for that op
only; under ``'cuda'`` a RuntimeError.

`compile_check` compiles (and links) every source for the architectures in
``TORCH_CUDA_ARCH_LIST`` (default ``8.0;9.0``) without using a GPU; its command line, and the
one that reruns the self-test, is build.py (``python -m alae.kernels.build``).
"""
import contextlib
import fcntl
import glob
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings

import torch

from . import selftest

IMPLS = ("auto", "ref", "cuda")
ENV_VAR = "ALAE_KERNELS"
DEFAULT_CHECK_ARCHS = "8.0;9.0"
KERNEL_DIR = os.path.dirname(os.path.abspath(__file__))
SELFTEST_FILE = "selftest.json"  # in the cache entry: {"format", "battery", "gpus": {gpu_name: results}}
SELFTEST_FORMAT = 1


class BuildError(RuntimeError):
    """The extension failed to compile or load; the message carries the compiler output."""


def cache_root():
    """Folder holding built extensions: $TORCH_EXTENSIONS_DIR or the user cache."""
    root = os.environ.get("TORCH_EXTENSIONS_DIR")
    if not root:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(cache, "alae", "torch_extensions")
    return root


def cpp_extension_module():
    """torch.utils.cpp_extension with a usable CUDA_HOME.

    torch derives CUDA_HOME from the location of `nvcc` on PATH; a wrapper script such as
    /usr/local/bin/nvcc makes that /usr/local, which has no CUDA headers. Fall back to the
    conventional locations then.
    """
    from torch.utils import cpp_extension

    def valid(home):
        return home and os.path.isfile(os.path.join(home, "include", "cuda_runtime.h"))

    if not valid(cpp_extension.CUDA_HOME):
        for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
            if valid(home):
                cpp_extension.CUDA_HOME = home
                break
    return cpp_extension


def nvcc_version(cpp_extension):
    """The last line of `nvcc --version` (its build id), or 'no-nvcc'."""
    if cpp_extension.CUDA_HOME is None:
        return "no-nvcc"
    try:
        out = subprocess.run([os.path.join(cpp_extension.CUDA_HOME, "bin", "nvcc"), "--version"],
                             capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return "no-nvcc"
    return out.strip().splitlines()[-1] if out.strip() else "no-nvcc"


def gpu_name(device):
    """'NAME (sm_XY)' of a CUDA device: what self-test results are recorded under."""
    major, minor = torch.cuda.get_device_capability(device)
    return f"{torch.cuda.get_device_name(device)} (sm_{major}{minor})"


def _well_formed(results, ops):
    """True for {op: result} of every op in `ops`, each as `selftest.run` returns it."""
    def valid(r):
        return (isinstance(r, dict) and isinstance(r.get("passed"), bool) and isinstance(r.get("cases"), int)
                and (r.get("failure") is None if r["passed"] else isinstance(r.get("failure"), str))
                and all(isinstance(r.get(k), (int, float)) for k in ("worst", "seconds")))

    return isinstance(results, dict) and set(results) == set(ops) and all(map(valid, results.values()))


def read_selftest(path, battery, ops):
    """{gpu: results} recorded in `path` by this battery; {} when the file is absent, unreadable,
    of another format or battery. Malformed entries are left out (their GPU reruns the test)."""
    try:
        with open(path) as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    if not (isinstance(data, dict) and data.get("format") == SELFTEST_FORMAT and data.get("battery") == battery
            and isinstance(data.get("gpus"), dict)):
        return {}
    return {gpu: r for gpu, r in data["gpus"].items() if _well_formed(r, ops)}


def write_selftest(path, battery, gpus):
    """Write {gpu: results} to `path` atomically: a private temporary file beside it, renamed over
    it (a fixed temporary name would let ranks starting together mix their writes)."""
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".tmp-", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump({"format": SELFTEST_FORMAT, "battery": battery, "gpus": gpus}, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _env(name, value):
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old


class Extension:
    """A C++/CUDA torch extension built at most once per process into a locked shared cache.

    `sources` are compiled and linked; `headers` only enter the cache key. Loading registers
    the library's torch ops (``torch.ops.<namespace>.*``); `load` returns the library path.
    `selftest`, if given, checks the ops on a GPU: an object with `OPS`, `BATTERY` and
    `run(device) -> {op: result}`, as the module selftest.py is.
    """

    def __init__(self, name, sources, headers=(), extra_cflags=(), extra_cuda_cflags=(), selftest=None):
        self.name = name
        self.sources = [os.path.abspath(s) for s in sources]
        self.headers = [os.path.abspath(h) for h in headers]
        self.extra_cflags = list(extra_cflags)
        self.extra_cuda_cflags = list(extra_cuda_cflags)
        self.with_cuda = any(s.endswith(".cu") for s in self.sources)
        self.selftest = selftest
        self._lock = threading.Lock()
        self._selftest_lock = threading.Lock()
        self._path = None
        self._error = None
        self._warned = set()  # what this process has warned about: "build", op names
        self._selftests = {}  # torch.device -> {op: result}, this process's
        self.built_here = False  # True when this process compiled it (rather than found it cached)

    # -- cache key and compilation ---------------------------------------------------------
    def _arch_list(self):
        """TORCH_CUDA_ARCH_LIST if set, else the current GPU's compute capability."""
        archs = os.environ.get("TORCH_CUDA_ARCH_LIST")
        if archs or not self.with_cuda:
            return archs or ""
        major, minor = torch.cuda.get_device_capability()
        return f"{major}.{minor}"

    def cache_key(self, archs):
        h = hashlib.sha256()
        for path in sorted(self.sources + self.headers):
            h.update(os.path.basename(path).encode() + b"\0")
            with open(path, "rb") as fh:
                h.update(fh.read() + b"\0")
        cpp_extension = cpp_extension_module()
        for item in (self.extra_cflags, self.extra_cuda_cflags, torch.__version__, torch.version.cuda,
                     nvcc_version(cpp_extension) if self.with_cuda else "", archs,
                     sys.version_info[:2], platform.machine()):
            h.update(repr(item).encode() + b"\0")
        return h.hexdigest()[:16]

    def cache_entry(self):
        """(architectures, folder of this build in the cache); the lock file is folder + '.lock'."""
        archs = self._arch_list()
        return archs, os.path.join(cache_root(), f"{self.name}-{self.cache_key(archs)}")

    def compile(self, build_dir, archs, verbose=False):
        """Compile and link into `build_dir` (ninja), then load; returns the library path."""
        cpp_extension = cpp_extension_module()
        with _env("TORCH_CUDA_ARCH_LIST", archs) if self.with_cuda else contextlib.nullcontext():
            try:
                return cpp_extension.load(
                    name=self.name, sources=self.sources, extra_cflags=["-O3"] + self.extra_cflags,
                    extra_cuda_cflags=["-O3"] + self.extra_cuda_cflags, extra_include_paths=[KERNEL_DIR],
                    build_directory=build_dir, verbose=verbose, with_cuda=self.with_cuda,
                    is_python_module=False)
            except Exception as exc:  # compiler errors arrive as RuntimeError with ninja's output
                raise BuildError(f"building {self.name} failed: {exc}") from exc

    # -- the shared cache -----------------------------------------------------------------
    def _build_or_fetch(self):
        archs, final = self.cache_entry()
        root = os.path.dirname(final)
        os.makedirs(root, exist_ok=True)
        lib = os.path.join(final, f"{self.name}.so")
        if not os.path.isfile(lib):
            with open(final + ".lock", "a+") as lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    print(f"alae.kernels: waiting for another process building {final}", file=sys.stderr)
                    fcntl.flock(lock, fcntl.LOCK_EX)
                try:  # the OS releases the lock if this process dies
                    lock.seek(0)
                    lock.truncate()
                    lock.write(f"{os.getpid()}\n")
                    lock.flush()
                    if not os.path.isfile(lib):
                        # Leftovers of builds killed midway: no live builder holds the lock.
                        for stale in glob.glob(final + ".tmp-*"):
                            shutil.rmtree(stale, ignore_errors=True)
                        if os.path.isdir(final):  # incomplete entry (no library)
                            shutil.rmtree(final, ignore_errors=True)
                        tmp = tempfile.mkdtemp(prefix=os.path.basename(final) + ".tmp-", dir=root)
                        try:
                            self.compile(tmp, archs)
                            os.rename(tmp, final)
                        except BaseException:
                            shutil.rmtree(tmp, ignore_errors=True)
                            raise
                        self.built_here = True
                        return lib  # compile() loaded it already
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)
        try:
            torch.ops.load_library(lib)
        except (OSError, RuntimeError) as exc:
            raise BuildError(f"loading {lib} failed: {exc}") from exc
        return lib

    def load(self):
        """Build (or fetch from the cache) and load, once per process; raise BuildError on failure."""
        with self._lock:
            if self._path is None and self._error is None:
                try:
                    self._path = self._build_or_fetch()
                except BuildError as exc:
                    self._error = exc
                except Exception as exc:  # e.g. an unwritable cache: also a reason to fall back
                    self._error = BuildError(f"building {self.name} failed: {exc!r}")
            if self._error is not None:
                raise self._error
            return self._path

    def available(self):
        """True when loaded; on a failed build warns once (with the compiler output) and returns False."""
        try:
            self.load()
            return True
        except BuildError as exc:
            if self.first_time("build"):
                warnings.warn(f"alae.kernels: the CUDA kernels are unavailable, falling back to the "
                              f"reference implementation (impl='ref').\n{exc}", RuntimeWarning, stacklevel=3)
            return False

    def first_time(self, key):
        """True the first time this process asks about `key` (what it warns about once)."""
        with self._lock:
            first = key not in self._warned
            self._warned.add(key)
            return first

    # -- the self-test ------------------------------------------------------------------------
    def selftest_path(self):
        """The self-test results file in this build's cache entry (builds first if needed)."""
        return os.path.join(os.path.dirname(self.load()), SELFTEST_FILE)

    def recorded_selftest(self, gpu):
        """The results recorded for GPU model `gpu` with this build and battery, or None."""
        return read_selftest(self.selftest_path(), self.selftest.BATTERY, self.selftest.OPS).get(gpu)

    def selftest_results(self, device, rerun=False):
        """{op: result} of the self-test on `device`'s GPU model: this process's, else the
        recorded ones, else (or with `rerun`) run now and recorded."""
        with self._selftest_lock:
            results = None if rerun else self._selftests.get(device) or self.recorded_selftest(gpu_name(device))
            if results is None:
                results = self.selftest.run(device)
                path = self.selftest_path()
                gpus = read_selftest(path, self.selftest.BATTERY, self.selftest.OPS)
                try:
                    write_selftest(path, self.selftest.BATTERY, {**gpus, gpu_name(device): results})
                except OSError as exc:  # a read-only cache: the next process tests again
                    if self.first_time("selftest record"):
                        warnings.warn(f"alae.kernels: could not record the self-test results in {path}: {exc}",
                                      RuntimeWarning, stacklevel=2)
            self._selftests[device] = results
            return results

    def selftest_failure(self, op, device):
        """None when `op` passed the self-test on `device` (or there is no self-test, or op is
        None), else one line naming the op, the GPU, the failing case and the error."""
        if self.selftest is None or op is None:
            return None
        results = self._selftests.get(device) or self.selftest_results(device)
        if results[op]["passed"]:
            return None
        return f"the CUDA {op} kernel failed its self-test on {gpu_name(device)}, {results[op]['failure']}"


KERNELS = Extension(
    "alae_kernels",
    sources=[os.path.join(KERNEL_DIR, s) for s in ("upfirdn2d.cpp", "upfirdn2d.cu", "bias_act.cpp", "bias_act.cu")],
    headers=[os.path.join(KERNEL_DIR, h)
             for h in ("common.h", "fast_divider.h", "torch_dtype.h", "upfirdn2d.h", "bias_act.h")],
    selftest=selftest,
)


def resolve_impl(impl, x, ext=KERNELS, op=None):
    """Return ``'ref'`` or ``'cuda'`` for op `op` called with `impl` on tensor `x`.

    'cuda' needs the kernels built and `op` passing the self-test on x's GPU (see the module
    docstring); op=None skips the self-test.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        if env not in IMPLS:
            raise ValueError(f"{ENV_VAR}={env!r} is not one of {', '.join(IMPLS)}")
        impl = env
    if impl not in IMPLS:
        raise ValueError(f"impl={impl!r} is not one of {', '.join(IMPLS)}")
    if impl == "ref":
        return "ref"
    on_cuda = x.device.type == "cuda"
    if impl == "cuda":
        if not on_cuda:
            raise RuntimeError(f"impl='cuda' needs a CUDA tensor, got one on {x.device}; use impl='ref' or 'auto'")
        try:
            ext.load()
        except BuildError as exc:
            raise RuntimeError(f"impl='cuda' requested but the CUDA kernels failed to build:\n{exc}") from exc
        failure = ext.selftest_failure(op, x.device)
        if failure:
            raise RuntimeError(f"impl='cuda' requested but {failure}")
        return "cuda"
    if not (on_cuda and ext.available()):
        return "ref"
    failure = ext.selftest_failure(op, x.device)
    if failure is None:
        return "cuda"
    if ext.first_time(op):
        warnings.warn(f"alae.kernels: {failure}; {op} falls back to the reference implementation (impl='ref') "
                      f"in this process and in later ones with this build (results in {ext.selftest_path()}; "
                      f"python -m alae.kernels.build --selftest reruns the test)", RuntimeWarning, stacklevel=3)
    return "ref"


def compile_check(verbose=False):
    """Compile and link every CUDA source into a temporary folder, without a GPU, for
    TORCH_CUDA_ARCH_LIST (default DEFAULT_CHECK_ARCHS); (archs, seconds), BuildError on failure."""
    archs = os.environ.get("TORCH_CUDA_ARCH_LIST") or DEFAULT_CHECK_ARCHS
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="alae-kernels-check-") as tmp:
        KERNELS.compile(tmp, archs, verbose=verbose)
    return archs, time.perf_counter() - start
