"""Import of original ALAE checkpoints: every tensor used once, and the converted F, G, E, D give
the original networks' outputs (tests/original_reference.py, an independent functional
re-statement of the original code) to float64 rounding, and to float32 rounding in float32."""
import ast
from pathlib import Path

import pytest
import torch
from original_reference import (
    TINY_ARGS,
    decoder,
    encoder,
    mapping_d,
    mapping_f,
    original_file,
    original_shapes,
    random_original_state,
)

from alae.config import Config, load_config
from alae.model import LatentAutoencoder
from alae.model_files.checkpoint import CheckpointError
from alae.model_files.loading import ORIGINAL_CHECKPOINT, load_networks, read_weights
from alae.model_files.original_alae import ConversionError
from alae.tools import convert

DATA = Path(__file__).parent / "data"
PREFIXES = {"decoder": "decoder.", "encoder": "encoder.", "mapping_f": "mapping_f.", "mapping_d": "mapping_d.",
            "dlatent_avg": "dlatent_avg."}
FFHQ_ARGS = dict(startf=16, maxf=512, layer_count=9, latent=512, mapping_layers=8)
CELEBA_ARGS = dict(startf=64, maxf=512, layer_count=7, latent=512, mapping_layers=8)
# Small model in the original's scheme: 4..128 px, so both resampling kinds run (fused at 128 px).
def read_tsv(name):
    rows = (line.split("\t") for line in (DATA / name).read_text().splitlines())
    return {key: tuple(ast.literal_eval(shape)) for key, shape in rows}


@pytest.mark.parametrize("tsv, args", [("official-alae-ffhq-state-dict.tsv", FFHQ_ARGS),
                                        ("official-alae-celeba-hq256-state-dict.tsv", CELEBA_ARGS)])
def test_reference_shape_scheme_reproduces_the_original_listings(tsv, args):
    generated = {PREFIXES[net] + k: v for net, tensors in original_shapes(**args).items() for k, v in tensors.items()}
    assert generated == read_tsv(tsv)


def save_original(tmp_path, args, seed=0, dtype=torch.float64, **layout):
    nets = random_original_state(original_shapes(**args), seed, dtype)
    path = tmp_path / "model.pth"
    torch.save(original_file(nets, **layout), path)
    return path, nets


@pytest.mark.parametrize("args, config", [(CELEBA_ARGS, "celeba-hq256"), (FFHQ_ARGS, "ffhq")])
def test_convert_full_size_original_files(tmp_path, args, config):
    """The released models' shapes: every tensor used (else the conversion fails), the config
    inferred equals our config of the same model, and load_networks reads the result."""
    ema_only = config == "ffhq"  # one network set keeps the 1024 px file small
    path, _ = save_original(tmp_path, args, dtype=torch.float32, training=not ema_only)
    out = tmp_path / "converted.pt"
    assert convert.main([str(path), str(out)]) == 0
    weights = read_weights(out)
    expected = load_config(config).model
    expected.encoder_std_eps = 0.0  # the original has no epsilon in E's style std
    assert weights.config.model == expected
    assert (weights.model is None) == ema_only
    LatentAutoencoder(Config(model=expected)).load_state_dict(weights.ema)  # strict: exactly our tensors


@pytest.fixture(scope="module")
def tiny_original(tmp_path_factory):
    """A small original-format file in float64 and our networks converted from it (float64)."""
    path, nets = save_original(tmp_path_factory.mktemp("tiny"), TINY_ARGS)
    weights = read_weights(path)
    model = LatentAutoencoder(weights.config).double()
    model.load_state_dict(weights.ema)
    return nets, model.eval(), weights


def assert_close(ours, reference, rtol):
    err = ((ours - reference).abs().max() / reference.abs().max()).item()
    assert err < rtol, err


def test_mapping_and_discriminator_match_the_original(tiny_original):
    nets, model, _ = tiny_original
    g = torch.Generator().manual_seed(1)
    z = torch.randn(5, 16, generator=g, dtype=torch.float64)
    assert_close(model.F(z), mapping_f(nets["mapping_f"], z), 1e-13)
    w = torch.randn(5, 16, generator=g, dtype=torch.float64)
    assert_close(model.D(w), mapping_d(nets["mapping_d"], w), 1e-13)


def original_noise(lod, batch, g):
    """Noise maps as the original draws them: the very first at batch 1 (its constant's batch)."""
    maps = []
    for i in range(lod + 1):
        r = 4 * 2 ** i
        maps += [torch.randn(1 if i == 0 else batch, 1, r, r, generator=g, dtype=torch.float64),
                 torch.randn(batch, 1, r, r, generator=g, dtype=torch.float64)]
    return maps


@pytest.mark.parametrize("lod, blend", [(5, 1.0), (5, 0.37), (2, 1.0), (2, 0.6), (0, 1.0)])
def test_generator_matches_the_original(tiny_original, lod, blend):
    nets, model, _ = tiny_original
    g = torch.Generator().manual_seed(2)
    styles = torch.randn(3, 12, 16, generator=g, dtype=torch.float64)
    noise = original_noise(lod, 3, g)
    ours = model.G(styles, lod, blend, noise=[n.expand(3, -1, -1, -1) for n in noise])
    assert_close(ours, decoder(nets["decoder"], styles, lod, blend, noise), 1e-12)
    deterministic = model.G(styles, lod, blend, noise="deterministic")
    assert_close(deterministic, decoder(nets["decoder"], styles, lod, blend, None), 1e-12)


@pytest.mark.parametrize("lod, blend", [(5, 1.0), (5, 0.37), (3, 1.0), (1, 0.5), (0, 1.0)])
def test_encoder_matches_the_original(tiny_original, lod, blend):
    nets, model, _ = tiny_original
    r = 4 * 2 ** lod
    images = torch.rand(3, 3, r, r, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 2 - 1
    assert_close(model.E(images, lod, blend), encoder(nets["encoder"], images, lod, blend, 6), 1e-12)


def test_training_networks_are_the_non_ema_set(tiny_original):
    nets, _, weights = tiny_original
    model = LatentAutoencoder(weights.config).double()
    model.load_state_dict(weights.model)
    z = torch.randn(4, 16, dtype=torch.float64)
    training_f = {k: v * 1.01 for k, v in nets["mapping_f"].items()}  # original_file's perturbation
    assert_close(model.F(z), mapping_f(training_f, z), 1e-13)


def test_float32_file_matches_the_float64_original_to_float32_rounding(tmp_path):
    path, nets = save_original(tmp_path, TINY_ARGS, seed=4, dtype=torch.float32)
    cfg, model = load_networks(path)
    assert next(model.parameters()).dtype == torch.float32
    nets64 = {n: {k: v.double() for k, v in t.items()} for n, t in nets.items()}
    g = torch.Generator().manual_seed(5)
    z = torch.randn(4, 16, generator=g, dtype=torch.float64)
    w = mapping_f(nets64["mapping_f"], z)
    assert_close(model.F(z.float()).double(), w, 1e-5)
    noise = original_noise(5, 4, g)
    styles = w[:, None].expand(-1, 12, -1)
    image = decoder(nets64["decoder"], styles, 5, 1.0, noise)
    ours = model.G(styles.float(), 5, 1.0, noise=[n.float().expand(4, -1, -1, -1) for n in noise]).double()
    assert_close(ours, image, 1e-5)
    assert_close(model.E(image.float(), 5, 1.0).double(), encoder(nets64["encoder"], image, 5, 1.0, 6), 1e-5)
    assert_close(model.w_avg.double(), nets64["dlatent_avg"]["buff"][0], 1e-7)


def test_ema_only_and_training_only_files(tmp_path):
    path, _ = save_original(tmp_path, TINY_ARGS, training=False)
    weights = read_weights(path)
    assert weights.kind == ORIGINAL_CHECKPOINT and weights.model is None
    assert any("only the EMA" in n for n in weights.notes)
    path, _ = save_original(tmp_path, TINY_ARGS, ema=False)
    weights = read_weights(path)
    assert weights.model is None and any("no EMA networks" in n for n in weights.notes)


def modified_file(tmp_path, edit):
    nets = random_original_state(original_shapes(**TINY_ARGS), 0)
    obj = original_file(nets)
    edit(obj["models"])
    path = tmp_path / "edited.pth"
    torch.save(obj, path)
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda m: m["generator_s"].__setitem__("extra.weight", torch.zeros(3)), "not used by the conversion: "
                                                                               "models/generator_s/extra.weight"),
    (lambda m: m["discriminator"].pop("encode_block.2.style_1.bias"), "models/discriminator has no tensor "
                                                                      "encode_block.2.style_1.bias"),
    (lambda m: m["mapping_fl_s"].__setitem__("map_blocks.1.fc.weight", torch.zeros(16, 8)), "has shape (16, 8)"),
    (lambda m: m.__setitem__("classifier", {}), "unknown entries under 'models': classifier"),
    (lambda m: m.pop("mapping_tl_s"), "but not mapping_tl_s"),
    (lambda m: m.pop("dlatent_avg"), "no 'dlatent_avg'"),
    (lambda m: m["dlatent_avg"].__setitem__("buff", torch.randn(12, 16)), "equal rows"),
    (lambda m: m["generator_s"]["decode_block.3.blur.weight"].mul_(2), "not the [1,2,1]x[1,2,1]/16 blur"),
])
def test_conversion_errors_name_the_tensor(tmp_path, edit, message):
    path = modified_file(tmp_path, edit)
    with pytest.raises(ConversionError, match=None) as info:
        read_weights(path)
    assert message in str(info.value)
    assert convert.main([str(path), str(tmp_path / "out.pt")]) == 1
    assert not (tmp_path / "out.pt").exists()


def test_files_of_the_wrong_kind_get_one_line_errors(tmp_path, capsys):
    not_a_model = tmp_path / "numbers.pt"
    torch.save({"step": 3, "values": torch.zeros(2)}, not_a_model)
    with pytest.raises(CheckpointError, match="neither an alae checkpoint nor an original ALAE model: found a dict "
                                              "with keys step, values"):
        read_weights(not_a_model)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00not a torch file" * 10)
    with pytest.raises(CheckpointError, match="cannot read"):
        read_weights(garbage)
    path, _ = save_original(tmp_path, TINY_ARGS)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(path.read_bytes()[:5000])
    assert convert.main([str(truncated), str(tmp_path / "out.pt")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("alae-convert: error: cannot read") and err.count("\n") == 1


def test_convert_refuses_alae_checkpoints_and_existing_outputs(tmp_path, capsys):
    path, _ = save_original(tmp_path, TINY_ARGS)
    out = tmp_path / "converted.pt"
    assert convert.main([str(path), str(out)]) == 0
    assert convert.main([str(path), str(out)]) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert convert.main([str(path), str(out), "--overwrite"]) == 0
    assert convert.main([str(out), str(tmp_path / "again.pt")]) == 1
    assert "already an alae checkpoint" in capsys.readouterr().err


def test_auxiliary_objects_of_the_original_code_do_not_stop_the_import(tmp_path, capsys):
    """The original's checkpoints may pickle objects of its own classes (a loss tracker, a
    scheduler) under 'auxiliary'; they are not needed, and their modules are not importable here.
    They are dropped with a note, never built, even when one would run code; in the networks the
    same object is refused."""
    import sys
    import types

    from hostile_files import SYSTEM, RunsCode

    module = types.ModuleType("tracker")

    class LossTracker:
        def __init__(self):
            self.means = {"loss": [0.5, 0.25]}

    LossTracker.__module__, LossTracker.__qualname__ = "tracker", "LossTracker"
    module.LossTracker = LossTracker
    sys.modules["tracker"] = module
    marker = tmp_path / "code-ran"
    nets = random_original_state(original_shapes(**TINY_ARGS), 0)
    try:
        obj = original_file(nets)
        obj["auxiliary"]["tracker"] = LossTracker()
        obj["auxiliary"]["hook"] = RunsCode(marker)
        torch.save(obj, tmp_path / "with-tracker.pth")
        obj["models"]["extra"] = RunsCode(marker)
        torch.save(obj, tmp_path / "hostile-networks.pth")
    finally:
        del sys.modules["tracker"]
    weights = read_weights(tmp_path / "with-tracker.pth")
    assert weights.kind == ORIGINAL_CHECKPOINT and weights.model is not None
    assert any("dropped 2 pickled objects" in n and "tracker.LossTracker" in n and SYSTEM in n for n in weights.notes)
    with pytest.raises(CheckpointError, match=f"it pickles the global (tracker.LossTracker|{SYSTEM})"):
        read_weights(tmp_path / "hostile-networks.pth")
    assert not marker.exists()


@pytest.mark.slow
def test_ffhq_shaped_networks_give_the_original_outputs_at_1024_px_to_float32_rounding(tmp_path):
    """The released FFHQ model's shapes at full resolution (fused up/down resampling from 128 px,
    all 18 style layers): float32 conversion against the float64 reference. About 15 s."""
    path, nets = save_original(tmp_path, FFHQ_ARGS, seed=6, dtype=torch.float32, training=False)
    _, model = load_networks(path)
    nets64 = {n: {k: v.double() for k, v in t.items()} for n, t in nets.items()}
    g = torch.Generator().manual_seed(7)
    z = torch.randn(1, 512, generator=g, dtype=torch.float64)
    w = mapping_f(nets64["mapping_f"], z)
    assert_close(model.F(z.float()).double(), w, 5e-6)
    styles = w[:, None].expand(-1, 18, -1)
    noise = original_noise(8, 1, g)
    image = decoder(nets64["decoder"], styles, 8, 1.0, noise)
    assert_close(model.G(styles.float(), 8, 1.0, noise=[n.float() for n in noise]).double(), image, 5e-5)
    w_image = encoder(nets64["encoder"], image, 8, 1.0, 9)
    assert_close(model.E(image.float(), 8, 1.0).double(), w_image, 5e-6)
    assert_close(model.D(w_image.float()).double(), mapping_d(nets64["mapping_d"], w_image), 5e-6)
