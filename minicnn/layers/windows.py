"""Window geometry shared by the layers that slide a window over (N, H, W, C) maps (Conv2D,
MaxPooling2D and any pooling you add): Keras's padding names, TensorFlow's output sizes and
padding split."""

PADDINGS = ("valid", "same")


def output_size_and_pads(size, k, s, padding):
    """Output length and (before, after) padding along one axis, as TensorFlow computes them.

    "valid": no padding, out = floor((size - k) / s) + 1.
    "same":  out = ceil(size / s); the padding is split with the odd extra on the after
             side (bottom / right), exactly as TensorFlow does.
    """
    if padding == "valid":
        return (size - k) // s + 1, (0, 0)
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return out, (total // 2, total - total // 2)


def check_padding(padding):
    """"valid" or "same", in any case ("SAME", "Same"), as Keras accepts it; returned lower-case."""
    if not isinstance(padding, str) or padding.lower() not in PADDINGS:
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    return padding.lower()


def spatial_plan(layer, input_shape, window, strides, padding):
    """(OH, OW, pads) for a window sliding over input_shape (None, H, W, C); checks the fit."""
    if len(input_shape) != 4:
        raise ValueError(f"layer {layer.name!r} expects inputs of shape (N, H, W, C), got "
                         f"{input_shape}; add the channel axis, e.g. x.reshape(-1, 28, 28, 1)")
    H, W = input_shape[1], input_shape[2]
    (KH, KW), (SH, SW) = window, strides
    OH, (top, bottom) = output_size_and_pads(H, KH, SH, padding)
    OW, (left, right) = output_size_and_pads(W, KW, SW, padding)
    if H + top + bottom < KH or W + left + right < KW:
        raise ValueError(f"layer {layer.name!r}: its {KH}x{KW} window is larger than its "
                         f"{H + top + bottom}x{W + left + right} (padded) input of shape {input_shape}")
    return OH, OW, (top, bottom, left, right)
