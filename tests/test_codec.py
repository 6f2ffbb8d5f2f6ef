"""Record encodings: lossless round trips, the auto policy, and refusal of wrong-sized records."""
import numpy as np
import pytest

from alae.datasets.codec import RAW_MAX_RESOLUTION, decode_record, encode_record, record_encoding


@pytest.mark.parametrize("encoding", ["raw", "png"])
def test_round_trip_is_lossless_and_chw(encoding):
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    decoded = decode_record(encode_record(image, encoding), encoding, 32, 3)
    assert decoded.shape == (3, 32, 32) and decoded.flags.writeable and decoded.flags.c_contiguous
    np.testing.assert_array_equal(decoded, image.transpose(2, 0, 1))


def test_raw_record_is_chw_bytes():
    image = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3)
    assert encode_record(image, "raw") == image.transpose(2, 0, 1).tobytes()


def test_auto_policy_is_raw_up_to_threshold_then_png():
    assert record_encoding(RAW_MAX_RESOLUTION, "auto") == "raw"
    assert record_encoding(2 * RAW_MAX_RESOLUTION, "auto") == "png"
    assert record_encoding(1024, "raw") == "raw" and record_encoding(4, "png") == "png"


@pytest.mark.parametrize("encoding", ["raw", "png"])
def test_wrong_size_record_raises(encoding):
    record = encode_record(np.zeros((8, 8, 3), dtype=np.uint8), encoding)
    with pytest.raises(ValueError, match="expected"):
        decode_record(record, encoding, 16, 3)
