"""Image sources: listing order, ignored files, zip members, the demo faces, and source errors."""
import zipfile

import numpy as np
import pytest
from PIL import Image

from alae.datasets import DatasetError
from alae.datasets.sources import FolderSource, LfwFacesSource, ZipSource, open_source


@pytest.fixture
def image_tree(tmp_path):
    for name in ["b/2.png", "b/10.JPG", "a.webp", "c.jpeg"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4), (10, 20, 30)).save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def test_folder_lists_images_recursively_in_sorted_relative_order(image_tree):
    listing = open_source(str(image_tree)).list()
    assert listing.images == ["a.webp", "b/10.JPG", "b/2.png", "c.jpeg"]
    assert listing.ignored == ["notes.txt"]
    assert open_source(str(image_tree)).open_image("b/2.png").getpixel((0, 0)) == (10, 20, 30)


def test_zip_lists_members_like_a_folder(image_tree, tmp_path_factory):
    archive = tmp_path_factory.mktemp("zip") / "images.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(image_tree.rglob("*")):
            zf.write(path, path.relative_to(image_tree).as_posix())
        zf.writestr("__MACOSX/._a.webp", b"resource fork")
    source = open_source(str(archive))
    assert isinstance(source, ZipSource)
    assert source.list().images == FolderSource(image_tree).list().images
    assert "__MACOSX/._a.webp" in source.list().ignored
    assert source.open_image("b/2.png").getpixel((0, 0)) == (10, 20, 30)


def test_lfw_source_has_the_100_faces_as_8_bit_gray():
    from skimage.data import lfw_subset

    source = open_source("lfw")
    assert isinstance(source, LfwFacesSource)
    names = source.list().images
    assert len(names) == 100 and names == sorted(names)
    face = source.open_image(names[7])
    assert face.mode == "L" and face.size == (25, 25)
    np.testing.assert_array_equal(np.asarray(face), np.rint(lfw_subset()[7] * 255).astype(np.uint8))


def test_missing_path_and_non_archive_file_are_refused(tmp_path):
    with pytest.raises(DatasetError, match="source not found"):
        open_source(str(tmp_path / "absent"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match="not a folder, a zip archive, an MNIST images file, 'lfw' or 'mnist'"):
        open_source(str(tmp_path / "notes.txt"))


_inherited = {}  # set before forking; fork children see it without pickling (as the builder's pool does)


def _reads_with_inherited_handle(name):
    source, parent_handle = _inherited["source"], _inherited["handle"]
    source.open_image(name)
    return source._zip() is parent_handle


def test_forked_workers_open_their_own_zip_handle(image_tree, tmp_path):
    """A zip handle inherited through fork shares its file offset with every other process:
    concurrent reads through it corrupt each other (seen as images silently skipped)."""
    import multiprocessing

    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(p for p in image_tree.rglob("*") if p.is_file()):
            zf.write(path, path.relative_to(image_tree).as_posix())
    source = ZipSource(archive)
    names = source.list().images
    _inherited.update(source=source, handle=source._zip())
    with multiprocessing.get_context("fork").Pool(2) as pool:
        inherited = pool.map(_reads_with_inherited_handle, names)
    assert names and not any(inherited)
    assert source._zip() is _inherited["handle"]  # the parent keeps its own handle
