"""The kernels' self-test: the battery, and the hook in resolve_impl that runs it once per GPU model.

The host-compiled kernel code (host_kernels.py, cast to every dtype) stands in for the CUDA ops,
so the battery runs the CUDA path's real Python side on the CPU against the float64 reference. Wrong stand-ins (one element
off, a gradient's padding shifted, a second derivative scaled, a launch error) must be caught
at their first wrong case; the hook is driven with a stand-in GPU (a fake CUDA tensor, a named
GPU model) and an extension built from a trivial source into a temporary cache.
"""
import importlib
import json
import os
import shutil
import types
import warnings

import pytest
import torch
from host_kernels import CpuBattery, install_stand_ins

from alae.kernels import battery as kernel_battery
from alae.kernels import build, extension, selftest

ufd = importlib.import_module("alae.kernels.upfirdn2d")
ba = importlib.import_module("alae.kernels.bias_act")

FAKE_CUDA_TENSOR = types.SimpleNamespace(device=torch.device("cuda"))
GPU = "Stand-in GPU (sm_00)"
CPU = torch.device("cpu")


@pytest.fixture
def stand_ins(monkeypatch, host_upfirdn2d, host_bias_act):
    return install_stand_ins(monkeypatch, host_upfirdn2d, host_bias_act)


# --- wrong kernels --------------------------------------------------------------------------

def perturb_one_float16_element(op):
    """upfirdn2d that is one element off in float16 only."""
    def wrong(x, *args):
        y = op(x, *args)
        if x.dtype == torch.float16:
            y = y.clone()
            y[0, 0, 0, 0] += 0.25
        return y
    return wrong


def scale_the_second_derivative(op):
    """bias_act whose second-derivative pass (mode 2) is 5% too large."""
    def wrong(g, b, xref, yref, dy, mode, *args):
        out = op(g, b, xref, yref, dy, mode, *args)
        return out * 1.05 if mode == 2 else out
    return wrong


def fail_on_bfloat16(op):
    """bias_act that cannot launch for bfloat16, as a kernel missing for the GPU would."""
    def wrong(g, *args):
        if g.dtype == torch.bfloat16:
            raise RuntimeError("bias_act (cuda): kernel launch failed: no kernel image is available")
        return op(g, *args)
    return wrong


def shift_the_gradient_padding(monkeypatch):
    """The backward's geometry padded one pixel to the right: the gradient comes out shifted."""
    transposed = ufd._Geometry.transposed

    def shifted(self, f, in_shape, out_shape):
        g = transposed(self, f, in_shape, out_shape)
        return ufd._Geometry(*g[:4], g[4] + 1, g[5] - 1, *g[6:])

    monkeypatch.setattr(ufd._Geometry, "transposed", shifted)


WRONG = {  # name: (op, wrap the stand-in, first wrong case starts with, what differs)
    "one float16 element": ("upfirdn2d", perturb_one_float16_element, "float16 NCHW up=1 down=1", "output: max error"),
    "second derivative": ("bias_act", scale_the_second_derivative, "float32 NCHW act=tanh",
                          "second derivative wrt x: max error"),
    "launch error": ("bias_act", fail_on_bfloat16, "bfloat16 NCHW act=linear", "raised RuntimeError: bias_act (cuda)"),
}


def test_the_battery_covers_every_dtype_layout_geometry_and_activation():
    for op in selftest.OPS:
        names = [c.name for c in kernel_battery.cases(op)]
        assert len(names) == len(set(names))
        combos = {(c.dtype, c.layout) for c in kernel_battery.cases(op)}
        assert combos == {(d, f) for d in (torch.float32, torch.float16, torch.bfloat16, torch.float64)
                          for f in (torch.contiguous_format, torch.channels_last)}
    geometries = kernel_battery.UPFIRDN2D_GEOMETRIES
    assert len(kernel_battery.cases("upfirdn2d")) == 8 * len(geometries)
    factors = lambda i: {v for g in geometries for v in ((g[i], g[i]) if isinstance(g[i], int) else g[i])}  # noqa: E731
    assert factors(0) == {1, 2} and factors(1) == {1, 2}
    pads = {p for g in geometries for p in g[2]}
    assert min(pads) < 0 < max(pads)
    assert {len(g[3]) for g in geometries} == {1, 2} and {g[4] for g in geometries} == {False, True}
    assert {g[5] for g in geometries} - {1.0}
    seen = {(name.split()[2], name.split()[1], "no bias" not in name, "clamp=" in name)
            for name in (c.name for c in kernel_battery.cases("bias_act"))}
    for act in ba.ACTIVATIONS:
        for layout in ("NCHW", "channels_last"):
            assert (f"act={act}", layout, True, True) in seen and (f"act={act}", layout, False, False) in seen


def test_the_correct_kernels_pass_every_case(stand_ins):
    results = selftest.run(CPU)
    for op in selftest.OPS:
        assert results[op]["passed"], results[op]["failure"]
        assert results[op]["cases"] == len(kernel_battery.cases(op)) and results[op]["failure"] is None
        assert 0 < results[op]["worst"] < 0.5  # errors well inside the tolerances, but not zero
        assert stand_ins.calls[op] >= 3 * results[op]["cases"]  # the CUDA path really ran
        assert "passed" in selftest.summary(results[op])


@pytest.mark.parametrize("wrong", list(WRONG))
def test_a_wrong_kernel_is_caught_at_its_first_wrong_case(stand_ins, wrong):
    op, wrap, case, what = WRONG[wrong]
    stand_ins.ops[op] = wrap(stand_ins.ops[op])
    results = selftest.run(CPU)
    failure = results[op]["failure"]
    assert not results[op]["passed"]
    assert failure.startswith(f"case '{case}") and what in failure, failure
    first = next(i for i, c in enumerate(kernel_battery.cases(op)) if c.name.startswith(case)) + 1
    assert results[op]["cases"] == first  # stops at the first failure
    other = next(o for o in selftest.OPS if o != op)
    assert results[other]["passed"]


def test_a_gradient_with_shifted_padding_is_caught(stand_ins, monkeypatch):
    shift_the_gradient_padding(monkeypatch)
    results = selftest.run(CPU)
    assert results["upfirdn2d"]["cases"] == 1
    assert "gradient wrt x: max error" in results["upfirdn2d"]["failure"]
    assert results["bias_act"]["passed"]


def test_the_battery_ignores_the_callers_grad_mode_and_leaves_the_global_rng(stand_ins):
    state = torch.get_rng_state()
    with torch.inference_mode():
        results = selftest.run(CPU)
    assert all(r["passed"] for r in results.values())
    assert torch.equal(torch.get_rng_state(), state)


# --- the hook in resolve_impl and the recorded results ---------------------------------------

@pytest.fixture(scope="module")
def built_trivial(tmp_path_factory):
    """A trivial extension built once into a cache folder that each test copies."""
    root = tmp_path_factory.mktemp("trivial")
    src = root / "trivial.cpp"
    src.write_text('extern "C" int alae_trivial_answer() { return 42; }\n')
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_EXTENSIONS_DIR", str(root / "cache"))
        extension.Extension("alae_selftest_trivial", [str(src)]).load()
    return src, root / "cache"


@pytest.fixture
def new_process(built_trivial, tmp_path, monkeypatch):
    """Makes what a fresh process has: an Extension (no state) over this test's own cache copy,
    on the stand-in GPU; returns (extension, its battery)."""
    src, built = built_trivial
    shutil.copytree(built, tmp_path / "cache")
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ALAE_KERNELS", raising=False)
    monkeypatch.setattr(extension, "gpu_name", lambda device: GPU)

    def make():
        battery = CpuBattery()
        return extension.Extension("alae_selftest_trivial", [str(src)], selftest=battery), battery

    return make


def resolve(ext, op, impl="auto"):
    return extension.resolve_impl(impl, FAKE_CUDA_TENSOR, ext, op=op)


def runtime_warnings(caught):
    return [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]


def test_auto_warns_once_and_falls_back_for_the_failing_op_only(stand_ins, new_process):
    stand_ins.ops["upfirdn2d"] = perturb_one_float16_element(stand_ins.ops["upfirdn2d"])
    ext, battery = new_process()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert resolve(ext, "upfirdn2d") == "ref"
        assert resolve(ext, "bias_act") == "cuda"
        assert resolve(ext, "upfirdn2d") == "ref"
    messages = runtime_warnings(caught)
    assert len(messages) == 1
    assert (f"the CUDA upfirdn2d kernel failed its self-test on {GPU}, case 'float16 NCHW up=1 down=1"
            in messages[0])
    assert "output: max error" in messages[0] and "falls back to the reference implementation" in messages[0]
    assert battery.runs == 1


def test_impl_cuda_raises_for_the_failing_op(stand_ins, new_process):
    stand_ins.ops["bias_act"] = scale_the_second_derivative(stand_ins.ops["bias_act"])
    ext, _ = new_process()
    with pytest.raises(RuntimeError, match=r"impl='cuda' requested but the CUDA bias_act kernel failed its "
                                           r"self-test on Stand-in GPU \(sm_00\), case 'float32 NCHW act=tanh.*"
                                           r"second derivative wrt x: max error"):
        resolve(ext, "bias_act", impl="cuda")
    assert resolve(ext, "upfirdn2d", impl="cuda") == "cuda"


def test_a_later_process_reads_the_recorded_results_instead_of_testing_again(stand_ins, new_process):
    wrong = stand_ins.ops["upfirdn2d"]
    stand_ins.ops["upfirdn2d"] = perturb_one_float16_element(wrong)
    first, battery = new_process()
    with pytest.warns(RuntimeWarning, match="failed its self-test"):
        assert resolve(first, "upfirdn2d") == "ref"
    with open(first.selftest_path()) as fh:
        record = json.load(fh)
    assert record["format"] == extension.SELFTEST_FORMAT and record["battery"] == selftest.BATTERY
    assert set(record["gpus"]) == {GPU} and not record["gpus"][GPU]["upfirdn2d"]["passed"]
    stand_ins.ops["upfirdn2d"] = wrong  # a rerun would pass now: the verdict must come from the record
    later, later_battery = new_process()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert resolve(later, "upfirdn2d") == "ref" and resolve(later, "bias_act") == "cuda"
    assert later_battery.runs == 0 and battery.runs == 1
    assert len(runtime_warnings(caught)) == 1
    assert later.selftest_results(FAKE_CUDA_TENSOR.device, rerun=True)["upfirdn2d"]["passed"]  # --selftest
    assert later_battery.runs == 1
    assert new_process()[0].recorded_selftest(GPU)["upfirdn2d"]["passed"]


def valid_results():
    return {op: {"passed": True, "cases": 3, "failure": None, "worst": 0.1, "seconds": 0.01} for op in selftest.OPS}


@pytest.mark.parametrize("content", [
    "truncated",
    "not json {",
    json.dumps({"format": extension.SELFTEST_FORMAT, "battery": "another battery", "gpus": {GPU: valid_results()}}),
    json.dumps({"format": extension.SELFTEST_FORMAT, "battery": selftest.BATTERY,
                "gpus": {GPU: {"upfirdn2d": valid_results()["upfirdn2d"]}}}),  # an op missing
    json.dumps({"format": extension.SELFTEST_FORMAT, "battery": selftest.BATTERY,
                "gpus": {GPU: {**valid_results(), "bias_act": {"passed": "yes"}}}}),
    json.dumps({"format": extension.SELFTEST_FORMAT, "battery": selftest.BATTERY,
                "gpus": {GPU: {**valid_results(), "bias_act": {"passed": True, "cases": 3}}}}),
])
def test_a_corrupt_or_partial_record_is_ignored_and_the_test_reruns(stand_ins, new_process, content):
    ext, battery = new_process()
    path = ext.selftest_path()
    if content == "truncated":
        good = json.dumps({"format": extension.SELFTEST_FORMAT, "battery": selftest.BATTERY, "gpus": {GPU: valid_results()}})
        content = good[: len(good) // 2]
    with open(path, "w") as fh:
        fh.write(content)
    assert resolve(ext, "upfirdn2d") == "cuda" and battery.runs == 1
    with open(path) as fh:
        record = json.load(fh)
    assert record["gpus"][GPU]["upfirdn2d"]["cases"] == len(kernel_battery.cases("upfirdn2d"))
    assert not [name for name in os.listdir(os.path.dirname(path)) if ".tmp-" in name]


def test_other_gpus_records_are_kept(stand_ins, new_process):
    ext, _ = new_process()
    other = {"Other GPU (sm_90)": valid_results()}
    extension.write_selftest(ext.selftest_path(), selftest.BATTERY, other)
    resolve(ext, "bias_act")
    assert set(extension.read_selftest(ext.selftest_path(), selftest.BATTERY, selftest.OPS)) == {GPU, *other}


def test_the_env_override_still_decides(stand_ins, new_process, monkeypatch):
    ext, battery = new_process()
    monkeypatch.setenv("ALAE_KERNELS", "ref")
    assert resolve(ext, "upfirdn2d", impl="cuda") == "ref" and battery.runs == 0
    stand_ins.ops["upfirdn2d"] = perturb_one_float16_element(stand_ins.ops["upfirdn2d"])
    monkeypatch.setenv("ALAE_KERNELS", "cuda")
    with pytest.raises(RuntimeError, match="failed its self-test"):
        resolve(ext, "upfirdn2d", impl="ref")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without a GPU")
def test_build_selftest_says_there_is_no_gpu(capsys):
    assert build.main(["--selftest"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err
