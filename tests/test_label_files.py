"""alae.editing.label_files: CelebA attribute lists and CSV label files read from content written here,
their one-line errors, and matching labels to image names by stem."""
import pytest

from alae.editing.label_files import LabelError, match_labels, read_labels

# CelebA's 40 attributes, in the order of its list_attr_celeba.txt header.
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
    "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
    "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
    "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()


def celeba_file(path, rows, count=None, names=("Male", "Smiling", "Young")):
    """rows: {image: [±1 per name]}, written with CelebA's runs of spaces and trailing blank."""
    lines = [str(len(rows) if count is None else count), " ".join(names) + " "]
    lines += [f"{image} " + "".join(f"{v:>3}" for v in values) for image, values in rows.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


ROWS = {"000001.jpg": [-1, 1, 1], "000002.jpg": [1, -1, 1], "000003.jpg": [-1, -1, -1], "000004.jpg": [1, 1, -1]}


def test_celeba_attribute_list(tmp_path):
    path = celeba_file(tmp_path / "list_attr_celeba.txt", ROWS)
    assert read_labels(path, "Smiling") == {"000001.jpg": True, "000002.jpg": False, "000003.jpg": False,
                                            "000004.jpg": True}
    assert read_labels(path, "Male") == {"000001.jpg": False, "000002.jpg": True, "000003.jpg": False,
                                         "000004.jpg": True}


def test_format_comes_from_the_content_not_the_extension(tmp_path):
    celeba = celeba_file(tmp_path / "labels.csv", ROWS)
    assert read_labels(celeba, "Young")["000003.jpg"] is False
    csv = tmp_path / "labels.txt"
    csv.write_text("image,value\na.png,1\n")
    assert read_labels(csv, "Young") == {"a.png": True}


def test_missing_attribute_lists_all_of_celebas_40(tmp_path):
    path = celeba_file(tmp_path / "list_attr_celeba.txt", {"000001.jpg": [1] * 40}, names=CELEBA_ATTRIBUTES)
    with pytest.raises(LabelError) as error:
        read_labels(path, "Smile")
    message = str(error.value)
    assert message.startswith(f"{path} has no attribute 'Smile'; it has: 5_o_Clock_Shadow, Arched_Eyebrows")
    assert all(name in message for name in CELEBA_ATTRIBUTES) and "\n" not in message


@pytest.mark.parametrize("edit, message", [
    (lambda text: text.replace("000003.jpg  -1", "000003.jpg   2"), r", line 5: Male is '2', expected 1 or -1"),
    (lambda text: text.replace("000002.jpg   1 -1  1", "000002.jpg   1 -1"), r", line 4: 2 values, line 2 names 3"),
    (lambda text: text.replace("000004.jpg", "000001.jpg"),
     r", line 6: image '000001.jpg' is listed twice \(also on line 3\)"),
    (lambda text: text.replace("4\n", "5\n", 1), r": line 1 says 5 images, the file lists 4"),
    (lambda text: "\n".join(text.splitlines()[:1]), r", line 2: no attribute names"),
])
def test_celeba_errors_name_the_file_and_line(tmp_path, edit, message):
    path = celeba_file(tmp_path / "list_attr_celeba.txt", ROWS)
    path.write_text(edit(path.read_text()))
    with pytest.raises(LabelError, match=message) as error:
        read_labels(path, "Male")
    assert str(error.value).startswith(str(path))


def test_csv_with_several_attribute_columns(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("filename,Smiling,Male,Eyeglasses\n"
                    "a.png,Yes,TRUE,-1\n"
                    "\n"
                    "sub/b.png, no ,+1,0\n"
                    "c.jpg,1,false,true\n"
                    "d.jpg,-1,0,NO\n")
    assert read_labels(path, "Smiling") == {"a.png": True, "sub/b.png": False, "c.jpg": True, "d.jpg": False}
    assert read_labels(path, "Male") == {"a.png": True, "sub/b.png": True, "c.jpg": False, "d.jpg": False}
    with pytest.raises(LabelError, match=r"has no attribute 'Young'; it has: Smiling, Male, Eyeglasses$"):
        read_labels(path, "Young")


def test_name_value_csv_answers_to_any_attribute(tmp_path):
    path = tmp_path / "smile.csv"
    path.write_text("\ufeffname,value\r\n000001.jpg,1\r\n000002.jpg,0\r\n")  # a BOM and CRLF, as spreadsheets save
    assert read_labels(path, "Smiling") == read_labels(path, "anything") == {"000001.jpg": True, "000002.jpg": False}


@pytest.mark.parametrize("text, message", [
    ("image,Smiling\na.png,1\nb.png,maybe\n", r", line 3: Smiling is 'maybe', expected one of 1, \+1, true, yes, 0"),
    ("image,Smiling\na.png,1\nb.png,\n", r", line 3: Smiling is ''"),
    ("image,Smiling\na.png,1,1\n", r", line 2: 3 fields, the header has 2"),
    ("image,Smiling\n,1\n", r", line 2: no image name"),
    ("image,Smiling\na.png,1\na.png,0\n", r", line 3: image 'a.png' is listed twice \(also on line 2\)"),
    ("image,Smiling,Smiling\na.png,1,1\n", r", line 1: column 'Smiling' is named twice"),
    ("image,\na.png,1\n", r", line 1: a CSV label file's header names the image column"),
])
def test_csv_errors_name_the_file_and_line(tmp_path, text, message):
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(LabelError, match=message) as error:
        read_labels(path, "Smiling")
    assert str(error.value).startswith(str(path))


@pytest.mark.parametrize("content, message", [
    (b"just some words\n", "neither a CelebA attribute list"),
    (b"", "neither a CelebA attribute list"),
    (b"\xff\xfe\x00\x01binary", "not UTF-8 text"),
])
def test_unknown_or_missing_files_are_refused(tmp_path, content, message):
    path = tmp_path / "labels.txt"
    path.write_bytes(content)
    with pytest.raises(LabelError, match=message):
        read_labels(path, "Smiling")
    with pytest.raises(LabelError, match="label file not found"):
        read_labels(tmp_path / "absent.txt", "Smiling")


def test_match_on_stems_across_extensions_and_folders():
    labels = {"000001.jpg": True, "000002.jpg": False, "000009.jpg": True}
    images = ["sub/000002.png", "000001.png", "other.png", "x\\000003.png"]
    pairs, unmatched = match_labels(labels, images)
    assert pairs == [(0, False), (1, True)]
    assert unmatched == ["000009.jpg"]


def test_ambiguous_stems_are_refused_when_labelled():
    with pytest.raises(LabelError, match=r"images 'a/000001.png' and 'b/000001.jpg' both match label '000001.jpg'"):
        match_labels({"000001.jpg": True}, ["a/000001.png", "b/000001.jpg"])
    with pytest.raises(LabelError, match=r"labels '7.jpg' and '7.png' both match image '7.webp'"):
        match_labels({"7.jpg": True, "7.png": False}, ["7.webp"])
    pairs, unmatched = match_labels({"1.jpg": True}, ["1.png", "a/2.png", "b/2.png"])  # 2 has no label: fine
    assert pairs == [(0, True)] and unmatched == []
