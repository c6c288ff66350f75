"""Hypothesis strategies for window-op configurations (shared by the op tests)."""
from hypothesis import strategies as st

from minicnn.kernels.geometry import window_geometry


@st.composite
def window_configs(draw, max_size=12, max_kernel=5, max_stride=3, max_channels=5):
    """batch 1–4, spatial 1–12 (non-square), kernel 1–5, stride 1–3, both paddings."""
    n = draw(st.integers(1, 4))
    h, w = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    padding = draw(st.sampled_from(["valid", "same"]))
    kh = draw(st.integers(1, min(max_kernel, h) if padding == "valid" else max_kernel))
    kw = draw(st.integers(1, min(max_kernel, w) if padding == "valid" else max_kernel))
    sh, sw = draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride))
    c = draw(st.integers(1, max_channels))
    f = draw(st.integers(1, max_channels))
    window_geometry(h, w, (kh, kw), (sh, sw), padding)
    return dict(n=n, h=h, w=w, c=c, f=f, kernel=(kh, kw), strides=(sh, sw), padding=padding)
