"""alae-studio's command line: one-line errors before anything is served."""
import sys

import pytest

from alae.tools import studio


def test_a_missing_model_or_image_folder_is_one_line(tiny_model, tmp_path, capsys):
    assert studio.main([str(tmp_path / "nothing.pt"), "--device", "cpu"]) == 1
    assert capsys.readouterr().err.count("\n") == 1
    assert studio.main([str(tiny_model), "--images", str(tmp_path / "photos"), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "--images" in err and "photos" in err and err.count("\n") == 1


def test_a_missing_direction_is_one_line(tiny_model, tmp_path, capsys):
    assert studio.main([str(tiny_model), "--directions", str(tmp_path / "smile.npz"), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "smile.npz" in err and err.count("\n") == 1


def test_without_gradio_it_says_how_to_install_it(tiny_model, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio raises ImportError
    assert studio.main([str(tiny_model), "--device", "cpu"]) == 1
    assert '.[studio]' in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--psi", "2"], ["--port", "0"], ["--upload-limit-mb", "0"]])
def test_bad_options_are_refused(tiny_model, argv):
    with pytest.raises(SystemExit):
        studio.parse_args([str(tiny_model), *argv])
