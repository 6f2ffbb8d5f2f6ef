"""Building the kernels: the compile-only check, the shared locked cache, and the fallback."""
import fcntl
import os
import signal
import subprocess
import sys
import textwrap
import time
import types
import warnings
from pathlib import Path

import pytest
import torch

from alae.kernels import extension

TRIVIAL_CPP = 'extern "C" int alae_trivial_answer() { return 42; }\n'
BROKEN_CPP = "int main() { this_is_not_cpp_code_42; }\n"
FAKE_CUDA_TENSOR = types.SimpleNamespace(device=torch.device("cuda"))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty extension cache (TORCH_EXTENSIONS_DIR) for this test."""
    root = tmp_path / "cache"
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(root))
    monkeypatch.delenv("ALAE_KERNELS", raising=False)
    return root


def _source(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _leftovers(root):
    return sorted(p.name for p in root.iterdir() if ".tmp-" in p.name) if root.exists() else []


@pytest.mark.slow
def test_check_compiles_every_cuda_source():
    if extension.cpp_extension_module().CUDA_HOME is None:
        pytest.skip("nvcc not found")
    env = dict(os.environ)
    env.setdefault("TORCH_CUDA_ARCH_LIST", extension.DEFAULT_CHECK_ARCHS)
    proc = subprocess.run([sys.executable, "-m", "alae.kernels.build", "--check"], capture_output=True,
                          text=True, env=env, timeout=1800)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "compiled upfirdn2d.cpp, upfirdn2d.cu, bias_act.cpp, bias_act.cu" in proc.stdout
    assert "CUDA initialized: False" in proc.stdout


def test_concurrent_processes_build_once(tmp_path, cache):
    """Two processes starting together: one compiles, the other waits and loads the result."""
    src = _source(tmp_path, "trivial.cpp", TRIVIAL_CPP)
    script = textwrap.dedent(f"""
        import ctypes
        from alae.kernels.extension import Extension
        ext = Extension("alae_trivial", [{src!r}])
        path = ext.load()
        assert ctypes.CDLL(path).alae_trivial_answer() == 42
        print("BUILT" if ext.built_here else "CACHED", path)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    words = sorted(out.split()[0] for out, _ in outs)
    paths = {out.split()[1] for out, _ in outs}
    assert words == ["BUILT", "CACHED"]
    assert len(paths) == 1 and os.path.isfile(paths.pop())
    assert _leftovers(cache) == []
    # A third process finds it in the cache without compiling.
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600).stdout
    assert out.startswith("CACHED")


def test_stale_lock_and_leftovers_are_recovered(tmp_path, cache):
    """A lock file left by a killed holder and a half-built folder do not block the extension."""
    ext = extension.Extension("alae_trivial_stale", [_source(tmp_path, "trivial.cpp", TRIVIAL_CPP)])
    _, entry = ext.cache_entry()
    cache.mkdir(parents=True)
    # A holder that took the lock, started a build, and was killed.
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import fcntl, os, sys, time
        f = open({entry + '.lock'!r}, "a+")
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(str(os.getpid())); f.flush()
        os.makedirs({entry + '.tmp-killed'!r})
        print("locked", flush=True)
        time.sleep(600)
    """)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with open(entry + ".lock") as f:  # really held
        with pytest.raises(BlockingIOError):
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    start = time.monotonic()
    path = ext.load()
    assert ext.built_here and os.path.isfile(path)
    assert time.monotonic() - start < 300
    assert _leftovers(cache) == []
    with open(entry + ".lock") as f:  # our pid replaced the dead one, and the lock is free again
        assert f.read().strip() == str(os.getpid())
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_failed_build_warns_once_and_falls_back(tmp_path, cache, monkeypatch):
    ext = extension.Extension("alae_broken", [_source(tmp_path, "broken.cpp", BROKEN_CPP)])
    compiles = []
    original = ext.compile
    monkeypatch.setattr(ext, "compile", lambda *a, **k: compiles.append(1) or original(*a, **k))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert extension.resolve_impl("auto", FAKE_CUDA_TENSOR, ext) == "ref"
        assert extension.resolve_impl("auto", FAKE_CUDA_TENSOR, ext) == "ref"
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1
    assert "this_is_not_cpp_code_42" in messages[0] and "falling back" in messages[0]
    with pytest.raises(RuntimeError, match="(?s)impl='cuda'.*failed to build.*this_is_not_cpp_code_42"):
        extension.resolve_impl("cuda", FAKE_CUDA_TENSOR, ext)
    assert len(compiles) == 1  # at most one build per process
    assert _leftovers(cache) == []


def test_impl_resolution_without_building(cache, monkeypatch):
    """CPU tensors and ALAE_KERNELS=ref never touch the extension; bad values are refused."""
    def fail():
        raise AssertionError("must not build")

    ext = types.SimpleNamespace(load=fail, available=fail)
    cpu = torch.zeros(1)
    assert extension.resolve_impl("auto", cpu, ext) == "ref"
    with pytest.raises(RuntimeError, match="needs a CUDA tensor"):
        extension.resolve_impl("cuda", cpu, ext)
    monkeypatch.setenv("ALAE_KERNELS", "ref")
    assert extension.resolve_impl("cuda", FAKE_CUDA_TENSOR, ext) == "ref"
    monkeypatch.setenv("ALAE_KERNELS", "cuda")
    with pytest.raises(RuntimeError, match="needs a CUDA tensor"):
        extension.resolve_impl("ref", cpu, ext)
    monkeypatch.setenv("ALAE_KERNELS", "CUDA")
    with pytest.raises(ValueError, match="ALAE_KERNELS='CUDA' is not one of"):
        extension.resolve_impl("auto", cpu, ext)


def test_cache_key_tracks_sources_and_archs(tmp_path):
    src = _source(tmp_path, "a.cpp", TRIVIAL_CPP)
    ext = extension.Extension("alae_key", [src])
    key = ext.cache_key("8.0")
    assert key == extension.Extension("alae_key", [src]).cache_key("8.0")
    assert key != ext.cache_key("9.0")
    with open(src, "a") as f:
        f.write("// changed\n")
    assert key != ext.cache_key("8.0")


def test_every_kernel_source_enters_the_cache_key():
    """A header left out of KERNELS would let an edit to it reuse a stale cached extension."""
    on_disk = {p.name for p in Path(extension.KERNEL_DIR).iterdir() if p.suffix in (".h", ".cuh", ".cu", ".cpp")}
    listed = {os.path.basename(p) for p in extension.KERNELS.sources + extension.KERNELS.headers}
    assert listed == on_disk


def test_ieee_fp32_convolutions_sets_and_restores_the_precision():
    from alae.kernels.benchmark import ieee_fp32_convolutions

    conv = torch.backends.cudnn.conv
    before = conv.fp32_precision
    with ieee_fp32_convolutions():
        assert conv.fp32_precision == "ieee"
    assert conv.fp32_precision == before
    with pytest.raises(KeyError), ieee_fp32_convolutions():
        raise KeyError("inside")
    assert conv.fp32_precision == before


def test_benchmark_runs_its_cases_on_cpu():
    """The benchmark's cases, passes and agreement check (ref vs plain torch) on a tiny model."""
    import io

    from alae.kernels import benchmark

    assert len(benchmark.ffhq_cases()) == 26  # 10 bias_lrelu, 8 blur, 4 upsample2x, 4 downsample2x
    out = io.StringIO()
    rows = benchmark.run("cpu", batch=2, channels=(8, 4, 2), dtypes=("fp32",), impls=("ref", "torch"),
                         warmup=1, reps=1, out=out)
    assert len(rows) == 3 * len(benchmark.ffhq_cases(2, (8, 4, 2)))
    assert all(r["ms"]["ref"] > 0 and r["ms"]["torch"] > 0 for r in rows)
    assert "blur" in out.getvalue() and "downsample2x" in out.getvalue()
    model = benchmark.run_model("cpu", batch=1, channels=(8, 4, 2), impls=("ref",), warmup=0, reps=1, out=out)
    assert model["ref"] > 0 and "at 16 px, batch 1: ref" in out.getvalue()
    if not torch.cuda.is_available():
        assert benchmark.main([]) == 2
