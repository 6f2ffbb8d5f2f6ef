"""W+ operations touch only the layers they are given, bit for bit, and are exact at their ends."""
import pytest
import torch

from alae.cli import ToolError
from alae.editing.layer_groups import describe_layers, layer_groups, parse_layers
from alae.editing.wplus_edits import apply_direction, interpolate, mix_styles

G = torch.Generator().manual_seed(0)
WPLUS = torch.randn(3, 8, 5, generator=G)


def test_a_direction_moves_only_the_chosen_layers_and_strength_zero_is_the_identity():
    vector = torch.randn(5, generator=G)
    edited = apply_direction(WPLUS, vector, [-2.0, 0.0, 1.5], [1, 2, 6])
    assert edited.shape == (3, 3, 8, 5)
    outside = [0, 3, 4, 5, 7]
    assert torch.equal(edited[:, :, outside], WPLUS[:, None, outside].expand(-1, 3, -1, -1))
    assert torch.equal(edited[:, 1], WPLUS)
    torch.testing.assert_close(edited[:, 2, [1, 2, 6]], WPLUS[:, [1, 2, 6]] + 1.5 * vector)


def test_mixing_takes_the_columns_styles_on_the_chosen_layers_only():
    cols = torch.randn(2, 8, 5, generator=G)
    mixed = mix_styles(WPLUS, cols, [0, 1, 2, 3])
    assert mixed.shape == (3, 2, 8, 5)
    for r in range(3):
        for c in range(2):
            assert torch.equal(mixed[r, c, :4], cols[c, :4]) and torch.equal(mixed[r, c, 4:], WPLUS[r, 4:])


def test_interpolation_is_exact_at_its_ends_and_linear_between():
    line = interpolate(WPLUS[:2], 5)
    assert torch.equal(line[0], WPLUS[0]) and torch.equal(line[-1], WPLUS[1])
    torch.testing.assert_close(line[2], (WPLUS[0] + WPLUS[1]) / 2)
    corners = torch.randn(4, 8, 5, generator=G)
    square = interpolate(corners, 3)
    for (v, u), k in {(0, 0): 0, (0, 2): 1, (2, 0): 2, (2, 2): 3}.items():
        assert torch.equal(square[v, u], corners[k])
    torch.testing.assert_close(square[1, 1], corners.mean(0))
    torch.testing.assert_close(square[1, 0], (corners[0] + corners[2]) / 2)
    with pytest.raises(ValueError):
        interpolate(corners[:3], 3)


def test_coarse_middle_fine_are_stylegans_at_18_layers_and_scale_with_the_count():
    assert layer_groups(18) == {"coarse": [0, 1, 2, 3], "middle": [4, 5, 6, 7], "fine": list(range(8, 18)),
                                "all": list(range(18))}
    groups = layer_groups(14)  # 256 px
    assert groups["coarse"] == [0, 1, 2] and groups["middle"] == [3, 4, 5] and groups["fine"][-1] == 13
    assert parse_layers("middle", 8) == [2, 3] and parse_layers("4-7,1", 8) == [1, 4, 5, 6, 7]
    assert describe_layers([0, 1, 2, 3, 8, 10, 11]) == "0-3,8,10-11"


def test_a_layer_outside_the_model_names_the_valid_range():
    with pytest.raises(ToolError, match="--layers 4-9: layer 8 is outside this model's style layers 0-7"):
        parse_layers("4-9", 8)
    with pytest.raises(ToolError, match="no coarse layers"):
        parse_layers("coarse", 2)  # a 4 px model's 2 layers are middle (0) and fine (1)
