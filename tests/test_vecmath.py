import numpy as np
import pytest

from nextvec.vecmath import cosine_rows, unit_rows


def test_unit_rows_scales_each_row_and_keeps_zero_rows_zero():
    v = np.array([[3.0, 4.0], [0.0, 0.0], [0.0, -2.0]], np.float32)
    u = unit_rows(v)
    assert u.dtype == np.float32
    np.testing.assert_array_equal(u, np.array([[0.6, 0.8], [0.0, 0.0], [0.0, -1.0]], np.float32))


def test_unit_rows_keeps_the_dtype_and_works_on_the_last_axis():
    v = np.array([[[1.0, 1.0], [2.0, 0.0]]])  # (1, 2, 2) float64
    u = unit_rows(v)
    assert u.dtype == np.float64 and u.shape == (1, 2, 2)
    np.testing.assert_allclose(u[0], [[2 ** -0.5, 2 ** -0.5], [1.0, 0.0]])


def test_cosine_rows_by_hand():
    a = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0], [1.0, 1.0]])
    b = np.array([[2.0, 0.0], [1.0, 0.0], [1.0, 1.0], [-3.0, -3.0]])
    c = cosine_rows(a, b)
    assert c.dtype == np.float32
    np.testing.assert_allclose(c, [1.0, 0.0, 0.0, -1.0], atol=1e-7)


def test_cosine_rows_ignores_length():
    a = np.array([[1.0, 2.0, 2.0]], np.float32)
    assert cosine_rows(a, 10 * a)[0] == pytest.approx(1.0)


def test_unit_centroid_counts_each_row_once_whatever_its_norm():
    from nextvec.vecmath import unit_centroid

    x = np.array([[[10.0, 0.0], [0.0, 1.0], [5.0, 5.0]]])  # (1, 3, 2)
    assert np.allclose(unit_centroid(x[:, :2]), [[2 ** -0.5, 2 ** -0.5]])
    assert np.allclose(unit_centroid(x, np.array([[True, False, False]])), [[1.0, 0.0]])
