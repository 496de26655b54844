"""Canonical rotations describe the same Gaussians, and Gibbs codes bound their rotation error."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sog.codec.rotation import GIBBS_MAX, canonical_rotations, gibbs_levels, pack_gibbs, quat_to_matrix, unpack_gibbs


def _covariances(quats: np.ndarray, log_scales: np.ndarray) -> np.ndarray:
    r = quat_to_matrix(quats)
    return r @ (np.exp(2 * log_scales)[:, :, None] * np.swapaxes(r, 1, 2))


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 2 * np.arccos(np.clip(np.abs((a * b).sum(1)), 0, 1))


quats_and_scales = st.integers(1, 200).flatmap(lambda n: st.tuples(
    arrays(np.float64, (n, 4), elements=st.floats(-1, 1)).filter(lambda q: np.all(np.linalg.norm(q, axis=1) > 1e-3)),
    arrays(np.float64, (n, 3), elements=st.floats(-8, 2))))


@settings(max_examples=60, deadline=None)
@given(quats_and_scales)
def test_a_canonical_rotation_keeps_every_covariance(qs):
    q, s = qs
    q2, s2 = canonical_rotations(q, s)
    before, after = _covariances(q, s), _covariances(q2, s2)
    assert np.allclose(before, after, rtol=1e-9, atol=1e-9 * np.abs(before).max())
    assert np.allclose(np.sort(s, 1), np.sort(s2, 1))                  # scales only permuted


@settings(max_examples=60, deadline=None)
@given(quats_and_scales)
def test_a_canonical_rotation_is_the_smallest_turn_and_a_fixed_point(qs):
    q, s = qs
    q2, s2 = canonical_rotations(q, s)
    g = q2[:, 1:] / q2[:, :1]
    assert np.all(q2[:, 0] > 0) and np.all(np.abs(g) <= GIBBS_MAX + 1e-9) and np.all(np.abs(g).sum(1) <= 1 + 1e-9)
    q3, s3 = canonical_rotations(q2, s2)
    assert np.allclose(q3, q2) and np.array_equal(s3, s2)


def test_gibbs_codes_turn_a_gaussian_by_at_most_a_step():
    rng = np.random.default_rng(0)
    q, _ = canonical_rotations(rng.normal(size=(20000, 4)), rng.normal(size=(20000, 3)))
    for bits in (5, 5.5, 6, 6.5, 7, 7.5, 8):
        levels = gibbs_levels(bits)
        assert levels % 2 == 1 and abs(levels - (2 ** bits - 1)) <= 1  # odd, so that zero is a level
        codes = pack_gibbs(q, levels)
        assert codes.max() <= levels - 1
        step = 2 * GIBBS_MAX / (levels - 1)        # one code step of a Gibbs component
        # a Gibbs-vector error e (max norm) turns by at most 2 * atan(sqrt(3) * e / 2)
        assert _angle(unpack_gibbs(codes, levels), q).max() <= 2 * np.arctan(np.sqrt(3) * step / 2) + 1e-9
    # the identity and turns about one axis keep exactly zero components
    assert np.array_equal(unpack_gibbs(pack_gibbs(np.array([[1.0, 0, 0, 0]]))), [[1.0, 0, 0, 0]])
