"""Data order: rank shards tile the global batch, every image once per epoch, exact resume."""
import itertools

import pytest
import torch

from alae.config import ConfigError
from alae.datasets import build_database
from alae.training.data import (
    NO_LABEL,
    DataPosition,
    MirroredImages,
    ShardSampler,
    epoch_order,
    make_loader,
    open_images,
)


def take(sampler, n):
    return list(itertools.islice(iter(sampler), n))


def test_rank_shards_concatenate_to_the_single_process_batch():
    n, batch, steps = 37, 8, 10
    single = take(ShardSampler(n, batch, 0, 1, seed=3, start=DataPosition(), mirror=True), batch * steps)
    shards = [take(ShardSampler(n, batch, r, 2, seed=3, start=DataPosition(), mirror=True), batch // 2 * steps)
              for r in range(2)]
    for step in range(steps):
        together = shards[0][step * 4:(step + 1) * 4] + shards[1][step * 4:(step + 1) * 4]
        assert together == single[step * batch:(step + 1) * batch]


def test_every_index_once_per_epoch_and_short_tail_skipped():
    n, batch = 37, 8  # 4 full batches per epoch, 5 images of tail skipped
    items = take(ShardSampler(n, batch, 0, 1, seed=0, start=DataPosition(), mirror=False), batch * 8)
    epoch0, epoch1 = [i for i, _ in items[:32]], [i for i, _ in items[32:]]
    assert len(set(epoch0)) == 32 and len(set(epoch1)) == 32
    assert epoch0 != epoch1  # reshuffled per epoch
    assert all(not flip for _, flip in items)


def test_position_advance_matches_the_sampler_and_resumes_exactly():
    n, batch = 37, 8
    straight = take(ShardSampler(n, batch, 0, 1, seed=5, start=DataPosition(), mirror=True), batch * 11)
    position = DataPosition()
    for _ in range(6):
        position = position.advance(batch, n)
    assert position == DataPosition(1, 16)
    resumed = take(ShardSampler(n, batch, 0, 1, seed=5, start=position, mirror=True), batch * 5)
    assert resumed == straight[batch * 6:]


def test_flips_are_per_epoch_and_index_not_per_rank():
    n, batch = 64, 16
    single = dict(take(ShardSampler(n, batch, 0, 1, seed=1, start=DataPosition(), mirror=True), 64))
    rank1 = dict(take(ShardSampler(n, batch, 1, 4, seed=1, start=DataPosition(), mirror=True), 16))
    assert all(single[i] == f for i, f in rank1.items())
    assert 10 < sum(single.values()) < 54


class ListImages(list):
    """A labelled image list standing in for an LMDBDataset."""

    has_labels = True

    def label(self, index):
        return 10 + index


def test_mirrored_images_flips_width_and_keeps_the_label():
    images = ListImages([torch.arange(6, dtype=torch.uint8).view(1, 2, 3)])
    image, label = MirroredImages(images)[(0, True)]
    assert torch.equal(image, images[0].flip(-1)) and label == 10
    assert torch.equal(MirroredImages(images)[(0, False)][0], images[0])


def test_batch_larger_than_training_set_is_a_config_error():
    with pytest.raises(ConfigError, match="larger than the training set"):
        ShardSampler(10, 16, 0, 1, seed=0, start=DataPosition(), mirror=False)


def test_the_loader_flips_exactly_the_images_the_epoch_order_marks(tmp_path):
    """data.mirror reaches the pixels: with it, the images whose flip bit is set come mirrored."""
    db = tmp_path / "db"
    build_database("lfw", db, max_resolution=8, workers=0)
    images, num_train, batch, seed = open_images(db, 8), 90, 16, 3
    order, flips = epoch_order(seed, 0, num_train)
    first = order[:batch].tolist()
    assert 0 < sum(bool(flips[i]) for i in first) < batch

    def first_batch(mirror):
        batch_ = next(iter(make_loader(images, num_train, batch, 0, 1, seed, DataPosition(), mirror, workers=0)))
        assert torch.equal(batch_.labels, torch.full((batch,), NO_LABEL))  # a database without labels
        return batch_.images

    assert torch.equal(first_batch(True), torch.stack([images[i].flip(-1) if flips[i] else images[i] for i in first]))
    assert torch.equal(first_batch(False), torch.stack([images[i] for i in first]))
