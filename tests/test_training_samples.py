"""The cluster figure of a class head, against its rule applied here by hand."""
import torch

from alae.config import load_config
from alae.model import LatentAutoencoder
from alae.training.samples import cluster_figure
from alae.training.schedule import Phase


def test_each_row_is_a_categorys_head_then_its_images_most_confident_first():
    cfg = load_config("mnist-aae-cluster", ["model.mlp_width=16", "model.latent_dim=4", "aae.categories=5",
                                            "model.discriminator_width=8"])
    torch.manual_seed(0)
    model = LatentAutoencoder(cfg).eval()
    x = torch.rand(40, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    phase = Phase(lod=0, alpha=1.0, batch=40, lr=0.0, resolution=28)
    columns = 4
    with torch.no_grad():
        figure = cluster_figure(model, x, phase, columns).view(5, columns, 1, 28, 28)
        probs = model.classify(x)
    for k in range(5):
        head = model.generate(model.broadcast(torch.cat([torch.zeros(1, 4), torch.eye(5)[k:k + 1]], dim=1)), 0, 1.0)
        torch.testing.assert_close(figure[k, 0], head[0])
        members = [i for i in range(40) if probs[i].argmax() == k]
        members = sorted(members, key=lambda i: -probs[i, k].item())[:columns - 1]
        for c in range(1, columns):
            expected = x[members[c - 1]] if c - 1 < len(members) else torch.full_like(x[0], -1.0)
            assert torch.equal(figure[k, c], expected), (k, c)
