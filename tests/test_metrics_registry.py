"""Metric names: every documented form parses to its count, anything else is one line listing the forms."""
import pytest

from alae.metrics import FAMILIES, MetricError, check_metric_names, parse_metric_names


@pytest.mark.parametrize("name, form, count", [
    ("fid50k", "fid{N}k", 50_000),
    ("fid50k_full", "fid{N}k_full", 50_000),
    ("kid10k", "kid{N}k", 10_000),
    ("kid50k_full", "kid{N}k_full", 50_000),
    ("fid_rec50k", "fid_rec{N}k", 50_000),
    ("lpips_rec10k", "lpips_rec{N}k", 10_000),
    ("mse_rec", "mse_rec", None),
    ("mse_rec2k", "mse_rec{N}k", 2_000),
    ("ppl_wend", "ppl_wend", 50_000),
    ("ppl_wfull", "ppl_wfull", 50_000),
    ("ppl_wfull3k", "ppl_wfull{N}k", 3_000),
])
def test_each_form_parses_to_its_family_and_count(name, form, count):
    (parsed,) = parse_metric_names([name])
    assert (parsed.name, parsed.family.form, parsed.count) == (name, form, count)


def test_a_comma_separated_string_is_split_and_duplicates_dropped():
    assert check_metric_names("fid1k, mse_rec,fid1k,") == ["fid1k", "mse_rec"]


@pytest.mark.parametrize("name", ["fid", "fid0k", "fid_50k", "fid50", "fid50k_ful", "FID50k", "ppl_zend", "kid1.5k"])
def test_unknown_names_are_one_line_errors_listing_the_valid_forms(name):
    with pytest.raises(MetricError) as error:
        check_metric_names(["fid1k", name])
    message = str(error.value)
    assert f"unknown metric {name!r}" in message and "\n" not in message
    assert all(family.form in message for family in FAMILIES)


def test_no_names_is_an_error():
    with pytest.raises(MetricError, match="no metrics given"):
        check_metric_names(" , ")
