"""Generated images of FID/KID: G(F(z_i)) with image i's own draws, no truncation, the same in any
batch; style mixing (--mixing) once per batch as the original; fid/kid end to end against scipy."""
import inception_stand_in as stand_in
import numpy as np
import pytest
import scipy.linalg
import torch

from alae import randomness
from alae.datasets import LMDBDataset
from alae.metrics import compute_metrics
from alae.metrics.evaluation import Evaluation
from alae.metrics.frechet import kernel_inception_distance
from alae.metrics.generation import generated_features, generated_images, generated_styles
from alae.metrics.inception import InceptionFeatures
from alae.metrics.sharding import single_process
from alae.model_files.loading import load_networks

metrics_cache, stand_ins, lfw16 = stand_in.metrics_cache, stand_in.stand_ins, stand_in.lfw16  # pytest fixtures
SEED = 5


@pytest.fixture(scope="module")
def model(tiny_model):
    return load_networks(tiny_model, verbose=False)[1]


def evaluation(model, data, stand_ins, **options):
    return Evaluation(model, data, model.num_lods - 1, 1.0, single_process("cpu"), seed=SEED,
                      inception_path=stand_ins[0], mode="legacy_tensorflow", show_progress=False, **options)


def z_of(i, purpose="metric-z"):
    """z of generated image i: 16 normals from a CPU generator seeded by (seed, purpose, i)."""
    g = torch.Generator().manual_seed(randomness.derive_seed(SEED, purpose, i))
    return torch.randn(16, generator=g)


def test_image_i_is_g_of_f_of_its_own_z_with_no_truncation(model, lfw16, stand_ins):
    images = generated_images(evaluation(model, lfw16, stand_ins), range(3, 7), 10)
    for k, i in enumerate(range(3, 7)):
        noise = randomness.per_sample_noise(model.G.noise_shapes(2), [i], torch.device("cpu"), SEED, "metric-noise")
        w = model.F(z_of(i)[None])
        expected = ((model.G(w[:, None].expand(-1, 6, -1), 2, 1.0, noise) + 1) * 127.5).round().clamp(0, 255)
        assert (images[k].float() - expected[0]).abs().max() <= 1  # float rounding may move a level


def test_features_do_not_depend_on_the_batch_size(model, lfw16, stand_ins):
    small = generated_features(evaluation(model, lfw16, stand_ins, batch=7), 40, "generated")
    large = generated_features(evaluation(model, lfw16, stand_ins, batch=40), 40, "generated")
    np.testing.assert_allclose(small, large, rtol=1e-4, atol=1e-4)


def test_mixing_follows_the_original_once_per_batch_rule(model, lfw16, stand_ins):
    """Each group of 16 images (the original's sampling batch) shares one cutoff, whatever our
    batch; a group mixes (cutoff < 6 active layers) with probability 0.9·(1 − 1/6) = 0.75, the
    original's effective rate (closed form)."""
    count, batch = 8000, 16
    styles = generated_styles(evaluation(model, lfw16, stand_ins, mixing=True, batch=5), range(count), count)
    w1 = model.F(torch.stack([z_of(i) for i in range(count)]))
    w2 = model.F(torch.stack([z_of(i, "metric-z2") for i in range(count)]))
    crossovers = []
    for i in range(count):
        from_w1 = [torch.allclose(styles[i, layer], w1[i]) for layer in range(6)]
        from_w2 = [torch.allclose(styles[i, layer], w2[i]) for layer in range(6)]
        cut = from_w1.index(False) if False in from_w1 else 6
        assert from_w1 == [True] * cut + [False] * (6 - cut) and all(from_w2[cut:]), i
        crossovers.append(cut)
    groups = [crossovers[g:g + batch] for g in range(0, count, batch)]
    assert all(len(set(group)) == 1 for group in groups)
    mixed = [group[0] for group in groups if group[0] < 6]
    assert abs(len(mixed) / len(groups) - 0.9 * (1 - 1 / 6)) < 0.04 and set(mixed) == {1, 2, 3, 4, 5}
    plain = generated_styles(evaluation(model, lfw16, stand_ins), range(4), count)
    torch.testing.assert_close(plain, w1[:4, None].expand(-1, 6, -1))


def test_fid_and_kid_of_generated_images_against_the_reals(model, lfw16, stand_ins, monkeypatch):
    """The figures from the generated features the network returned (captured) and the reals' own
    features, by scipy's sqrtm and the KID of the same subsets."""
    returned = []
    original = InceptionFeatures.__call__

    def capture(self, images):
        returned.append(original(self, images))
        return returned[-1]

    monkeypatch.setattr(InceptionFeatures, "__call__", capture)
    fid, kid = compute_metrics("fid1k,kid1k", model, lfw16, seed=SEED, batch=100, inception=stand_ins[0],
                               mode="legacy_tensorflow", progress=False)
    assert [len(f) for f in returned] == [100] + [100] * 10  # the reals first, then 1000 generated
    gen = torch.cat(returned[1:]).double().numpy()
    network = torch.jit.load(str(stand_ins[0]))
    database = LMDBDataset(lfw16, 16)
    real = network(torch.stack([database[i] for i in range(100)]).float(), return_features=True).double().numpy()
    sg, sr = np.cov(gen, rowvar=False), np.cov(real, rowvar=False)
    root, _ = scipy.linalg.sqrtm(sg @ sr, disp=False)
    expected = np.square(gen.mean(0) - real.mean(0)).sum() + np.trace(sg + sr - 2 * np.real(root))
    assert fid.value == pytest.approx(expected, rel=1e-5)
    rng = np.random.default_rng(randomness.derive_seed(SEED, "kid"))
    assert kid.value == pytest.approx(kernel_inception_distance(gen, real, rng), rel=1e-5, abs=1e-7)
    assert fid.images == kid.images == {"generated": 1000, "real": 100}
    assert fid.info["mixing"] is False and fid.info["feature_network"]["file"] == "inception-2015-12-05.pt"
