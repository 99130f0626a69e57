"""Argument checks and helpers shared by the backbone builders."""

import keras

from affnet.models.backbones.preprocessing import InputPreprocessing


def check_input_size(input_size, minimum):
    """Raise ValueError unless `input_size` is an int >= `minimum`."""
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < minimum:
        raise ValueError(f"input_size must be an int >= {minimum}, got {input_size!r}")
    return input_size


def check_width(width):
    """Raise ValueError unless `width` is a positive number."""
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
        raise ValueError(f"width must be a positive number, got {width!r}")
    return float(width)


def scaled(filters, width):
    """`filters * width`, rounded, at least 1 (width=1.0 keeps the paper's count)."""
    return max(1, int(round(filters * width)))


def image_input(input_size, input_preprocessing):
    """The backbone input `images` (S, S, 3) and its preprocessed tensor."""
    images = keras.Input((input_size, input_size, 3), name="images")
    x = InputPreprocessing(input_preprocessing, name="input_preprocessing")(images)
    return images, x
