
import numpy as np
import pytest

from core.images import BadImage, load_rgb
from tests.helpers.bad_inputs import write_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    return folder, write_corpus(folder)


def test_convertible_images_load_as_8bit_rgb(corpus):
    folder, expected = corpus
    for name in (n for n, ok in expected.items() if ok):
        rgb = load_rgb(folder / name, min_side=8)
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3, name


def test_exif_orientation_is_applied(corpus):
    folder, _ = corpus
    assert load_rgb(folder / "rotated.jpg", min_side=8).shape[:2] == (40, 20)


def test_sixteen_bit_is_scaled_not_clipped(corpus):
    folder, _ = corpus
    rgb = load_rgb(folder / "gray16.png", min_side=8)
    assert rgb.min() == 0 and rgb.max() == 255 and len(np.unique(rgb)) > 200


@pytest.mark.parametrize("name, reason", [("truncated.jpg", "unreadable"), ("not_an_image.jpg", "unreadable"),
                                          ("empty.png", "unreadable"), ("tiny.png", "too small"),
                                          ("bomb.png", "refused")])
def test_bad_inputs_are_refused_with_a_reason(corpus, name, reason):
    folder, _ = corpus
    with pytest.raises(BadImage, match=reason):
        load_rgb(folder / name, min_side=8)


def test_bomb_is_refused_before_decoding(corpus):
    """The file claims 100,000 x 100,000 pixels over 64 bytes of data: a decode would need 30 GB or fail on the
    missing data, so a refusal naming the claimed size can only come from the header."""
    folder, _ = corpus
    with pytest.raises(BadImage, match=r"^refused: .*(100000x100000|10000000000 pixels)"):
        load_rgb(folder / "bomb.png")
