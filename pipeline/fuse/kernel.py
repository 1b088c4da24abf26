"""Compiled kernels for the fuse rule (docs/fusion.md): one pass over the maps, no temporaries.

In numpy the rule takes ~10 array passes per member (float16 cast, relu, a partition for q99, scale,
clip, two threshold votes, three accumulations); here each pixel's members are combined in
registers, in one vectorised loop (measurements: docs/fusion.md, benchmarks/bench_fuse.py).

Maps arrive as their raw float16 bits (numba has no float16 on the CPU). For non-negative finite
values the bit pattern orders like the value, so relu and ordering happen on integer "keys":
negative values and NaN become 0, +inf the largest finite float16. q99 is then an exact order
statistic read off a histogram of keys, equal to numpy's linear-interpolation quantile.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from core.store import BACKGROUND, FOREGROUND, IGNORE, WEIGHT_SCALE

PERCENTILE = 0.99  # part of the rule itself (n = relu / q99), not a tuning knob
INF_BITS = 0x7C00  # float16 +inf; keys run over 0 .. INF_BITS - 1, the non-negative finite values
FLAT_SCALE = np.float32(3.0e38)  # 1/q for q = 0: every positive value saturates to 1, zero stays 0


@njit(nogil=True, cache=True, inline="always")
def _key(bits):
    """relu in bit space: negatives (sign bit set) and NaN -> 0, +inf -> the largest finite value."""
    k = np.uint32(bits)
    if k < INF_BITS:
        return k
    return np.uint32(INF_BITS - 1) if k == INF_BITS else np.uint32(0)


@njit(nogil=True, cache=True, inline="always")
def _value(key):
    """The exact float32 of a non-negative finite float16 given by its bits."""
    if key < 0x400:  # subnormal: key * 2^-24, exact in float32
        return np.float32(np.int32(key)) * np.float32(2.0 ** -24)
    return np.uint32((key << np.uint32(13)) + np.uint32(0x38000000)).view(np.float32)


@njit(nogil=True, cache=True, inline="always")
def _normalised(bits, scale):
    """The rule's n = min(1, relu(map) / q99) for one pixel, `scale` being 1 / q99."""
    return min(_value(_key(bits)) * scale, np.float32(1))


@njit(nogil=True, cache=True, inline="always")
def _scale(q):
    return np.float32(1) / q if q > 0 else FLAT_SCALE


@njit(nogil=True, cache=True)
def _row_q99(row, hist):
    """99th percentile of relu(row), row given as float16 bits; `hist` (INF_BITS zeros) is left zeroed."""
    width = row.size
    position = (width - 1) * PERCENTILE
    low = int(np.floor(position))
    rank = width - 1 - low  # the low-th smallest is the rank-th largest (0 = the largest)
    top = 0
    for bits in row:
        k = _key(bits)
        hist[k] += 1
        top = max(top, k)
    seen, at_low, at_high = 0, np.float32(0), np.float32(-1)
    for k in range(top, -1, -1):
        seen += hist[k]
        if at_high < 0 and seen > rank - 1:
            at_high = _value(np.uint32(k))
        if seen > rank:
            at_low = _value(np.uint32(k))
            break
    hist[:top + 1] = 0
    if rank == 0:
        at_high = at_low
    return at_low + (at_high - at_low) * np.float32(position - low)


@njit(nogil=True, cache=True)
def positive_q99(bits, out):
    """out[b] = 99th percentile of relu(map b) for float16 maps given as uint16 bits [B, P]."""
    hist = np.zeros(INF_BITS, np.int32)
    for b in range(bits.shape[0]):
        out[b] = _row_q99(bits[b], hist)


@njit(nogil=True, cache=True)
def normalise_rows(bits, q99, out):
    """out[b, p] = n for float16 maps given as uint16 bits [B, P] and their q99 [B]."""
    for b in range(bits.shape[0]):
        scale = _scale(q99[b])
        for p in range(bits.shape[1]):
            out[b, p] = _normalised(bits[b, p], scale)


def q99_of_maps(maps: np.ndarray) -> np.ndarray:
    """float32 [B]: the 99th percentile of relu(map) for each map of a float16 [B, S, S] stack."""
    out = np.empty(len(maps), np.float32)
    positive_q99(as_bits(maps), out)
    return out


def as_bits(maps: np.ndarray) -> np.ndarray:
    """A float16 [B, ...] stack as uint16 [B, P] bits, without a copy when it is contiguous."""
    if maps.dtype != np.float16:
        raise TypeError(f"the fuse kernels read the stored float16 maps, got {maps.dtype}")
    return np.ascontiguousarray(maps).reshape(len(maps), -1).view(np.uint16)


@njit(nogil=True, cache=True)
def fuse_pixels(maps, q99, weights, ok, fg, bg, mask, weight, consensus):
    """Fuse M member maps (a tuple of uint16 [B, P] float16 bits) into mask, weight and consensus.

    q99 [M, B] holds each map's stored percentile; NaN means "not stored" and it is computed here.
    weights [M, B] sum to 1 per image; fg and bg [B] are each image's thresholds. Images with ok False get
    mask IGNORE, weight 0, consensus NaN.
    `consensus` is [B, P], or [1, P] scratch when it is not wanted: the pixel loop stores it
    unconditionally, because a conditional store there stopped LLVM from vectorising it.
    """
    members = len(maps)
    pixels = mask.shape[1]
    keep_consensus = consensus.shape[0] == mask.shape[0]
    hist = np.zeros(INF_BITS, np.int32)
    scale = np.empty(members, np.float32)
    w = np.empty(members, np.float32)
    one, zero = np.float32(1), np.float32(0)
    for b in range(mask.shape[0]):
        if not ok[b]:
            mask[b, :] = IGNORE
            weight[b, :] = 0
            consensus[b if keep_consensus else 0, :] = np.nan
            continue
        for m in range(members):
            q = q99[m, b]
            if np.isnan(q):
                q = _row_q99(maps[m][b], hist)
            scale[m] = _scale(q)
            w[m] = weights[m, b]
        row = consensus[b if keep_consensus else 0]
        fg_b, bg_b = fg[b], bg[b]
        for p in range(pixels):
            c, votes_fg, votes_bg = zero, zero, zero
            for m in range(members):
                n = _normalised(maps[m][b, p], scale[m])
                c += w[m] * n
                votes_fg += w[m] * np.float32(n >= fg_b)
                votes_bg += w[m] * np.float32(n <= bg_b)
            is_fg, is_bg = c >= fg_b, c <= bg_b
            mask[b, p] = FOREGROUND if is_fg else (BACKGROUND if is_bg else IGNORE)
            agreement = votes_fg if is_fg else (votes_bg if is_bg else zero)
            weight[b, p] = np.uint8(min(max(agreement, zero), one) * np.float32(WEIGHT_SCALE) + np.float32(0.5))
            row[p] = c
