"""The training loader: tensors, errors, resolution switching, mirroring, workers and distributed sampling."""
import hashlib

import lmdb
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from alae.datasets import DatasetError, LMDBDataset, build_database


@pytest.fixture(scope="module")
def lfw_db(tmp_path_factory):
    """The 100 embedded faces at 4..32 px (distinct images, so a digest identifies an index)."""
    path = tmp_path_factory.mktemp("lfw") / "db"
    build_database("lfw", path, max_resolution=32, workers=0)
    return path


def digest(image: torch.Tensor) -> str:
    return hashlib.sha1(image.contiguous().numpy().tobytes()).hexdigest()


@pytest.fixture(scope="module")
def index_of_digest(lfw_db):
    dataset = LMDBDataset(lfw_db, 16)
    table = {digest(dataset[i]): i for i in range(len(dataset))}
    assert len(table) == len(dataset)
    return table


def test_items_are_uint8_chw_at_the_chosen_resolution(lfw_db):
    dataset = LMDBDataset(lfw_db, 8)
    assert len(dataset) == 100 and dataset.resolutions == [4, 8, 16, 32]
    image = dataset[-1]
    assert image.dtype == torch.uint8 and image.shape == (3, 8, 8) and image.is_contiguous()
    assert torch.equal(image, dataset[99])
    assert dataset.source_name(99) == "lfw_subset/face_099"
    with pytest.raises(IndexError):
        dataset[100]


def test_set_resolution_switches_level_and_refuses_unstored_ones(lfw_db):
    dataset = LMDBDataset(lfw_db, 4)
    dataset.set_resolution(32)
    assert dataset[0].shape == (3, 32, 32)
    with pytest.raises(DatasetError, match="does not store resolution 64; it stores 4, 8, 16, 32"):
        dataset.set_resolution(64)
    with pytest.raises(DatasetError, match="does not store resolution 2"):
        LMDBDataset(lfw_db, 2)


def test_mirror_flips_about_half_the_time_with_torch_rng(lfw_db):
    plain, mirrored = LMDBDataset(lfw_db, 32), LMDBDataset(lfw_db, 32, mirror=True)
    torch.manual_seed(0)
    flips = [torch.equal(mirrored[i], plain[i].flip(2)) for i in range(100)]
    assert 30 < sum(flips) < 70
    torch.manual_seed(0)
    assert flips == [torch.equal(mirrored[i], plain[i].flip(2)) for i in range(100)]


def test_errors_for_missing_foreign_and_incomplete_databases(tmp_path, lfw_db):
    with pytest.raises(DatasetError, match="dataset not found"):
        LMDBDataset(tmp_path / "absent", 8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="not an alae database"):
        LMDBDataset(tmp_path / "empty", 8)
    env = lmdb.open(str(tmp_path / "foreign"))
    with env.begin(write=True) as txn:
        txn.put(b"hello", b"world")
    env.close()
    with pytest.raises(DatasetError, match="not an alae database"):
        LMDBDataset(tmp_path / "foreign", 8)
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "data.mdb").write_bytes(b"\0" * 8192)
    with pytest.raises(DatasetError, match="not an alae database"):
        LMDBDataset(tmp_path / "garbage", 8)
    assert issubclass(DatasetError, ValueError)


def test_two_workers_yield_every_index_once_per_epoch(lfw_db, index_of_digest):
    dataset = LMDBDataset(lfw_db, 16)
    dataset[0]  # the parent has its reader open before the workers fork
    loader = DataLoader(dataset, batch_size=7, shuffle=True, num_workers=2)
    for _ in range(2):
        seen = [index_of_digest[digest(image)] for batch in loader for image in batch]
        assert sorted(seen) == list(range(100))


@pytest.mark.slow
def test_spawned_workers_open_their_own_reader(lfw_db, index_of_digest):
    loader = DataLoader(LMDBDataset(lfw_db, 16), batch_size=25, num_workers=2, multiprocessing_context="spawn")
    assert sorted(index_of_digest[digest(image)] for batch in loader for image in batch) == list(range(100))


def test_distributed_sampler_over_two_ranks_covers_every_index_once(lfw_db, index_of_digest):
    dataset = LMDBDataset(lfw_db, 16)
    seen = []
    for rank in range(2):
        sampler = DistributedSampler(dataset, num_replicas=2, rank=rank, shuffle=True, seed=3)
        sampler.set_epoch(1)
        loader = DataLoader(dataset, batch_size=10, sampler=sampler, num_workers=2)
        seen += [index_of_digest[digest(image)] for batch in loader for image in batch]
    assert sorted(seen) == list(range(100))


def test_a_missing_record_is_a_dataset_error_naming_verify(tmp_path):
    path = tmp_path / "db"
    build_database("lfw", path, max_resolution=8, workers=0)
    with lmdb.open(str(path)) as env, env.begin(write=True) as txn:
        txn.delete(b"img/0008/00000003")
        txn.delete(b"name/00000003")
    dataset = LMDBDataset(path, 8)
    assert dataset[2].shape == (3, 8, 8)
    with pytest.raises(DatasetError, match="image 3 at 8 px is missing.*--verify"):
        dataset[3]
    with pytest.raises(DatasetError, match="source name of image 3 is missing"):
        dataset.source_name(3)
