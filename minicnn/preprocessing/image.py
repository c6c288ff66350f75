"""Image augmentation: one affine transform per image, sampled bilinearly, vectorized.

The transform maps each OUTPUT pixel to the INPUT coordinate it reads from.  Keras's
``apply_affine_transform`` builds it in (x, y) order and then swaps the two axes to
index (row, col) arrays; we keep that convention exactly, so augmented batches match
Keras's::

    M  = C · R(θ) · S(tx, ty) · H(φ) · Z(zx, zy) · C⁻¹        (x, y) = (col, row)
    M' = P · M · P                                           P swaps the two axes
    [r', c', 1]ᵀ = M' · [r, c, 1]ᵀ

rotation ``R``, shift ``S``, shear ``H = [[1, −sin φ], [0, cos φ]]``, zoom ``Z``, and ``C`` a
translation by (h/2 − ½, w/2 − ½).  Consequences of Keras's convention: ``tx`` (which
``ImageDataGenerator`` draws from ``height_shift_range``) moves columns, ``ty`` rows,
θ = 90° turns the picture counter-clockwise on screen, and the rotation centre is
off-centre for non-square images.  The value at (r', c') is
bilinear in its four neighbours; neighbours outside the image follow ``fill_mode``
(SciPy's conventions, which Keras inherits): ``'nearest'`` clamps, ``'reflect'``
mirrors about the pixel edge (d c b a | a b c d | d c b a), ``'wrap'`` moves the
coordinate by multiples of n − 1 (the first and last pixel overlap), and ``'constant'`` gives ``cval``
for any coordinate beyond the image.  Flips are applied afterwards, then ``rescale``.
"""
from __future__ import annotations

import numpy as np

FILL_MODES = ("nearest", "constant", "reflect", "wrap")


def affine_matrix(theta=0.0, tx=0.0, ty=0.0, shear=0.0, zx=1.0, zy=1.0, h=1, w=1):
    """The 3×3 output→input matrix in (row, col) coordinates (degrees; Keras's convention)."""
    t, s = np.deg2rad(theta), np.deg2rad(shear)
    rotation = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    shift = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]])
    shearing = np.array([[1, -np.sin(s), 0], [0, np.cos(s), 0], [0, 0, 1]])
    zoom = np.array([[zx, 0, 0], [0, zy, 0], [0, 0, 1]])
    o_r, o_c = h / 2 - 0.5, w / 2 - 0.5
    to_centre = np.array([[1, 0, o_r], [0, 1, o_c], [0, 0, 1]])
    from_centre = np.array([[1, 0, -o_r], [0, 1, -o_c], [0, 0, 1]])
    swap = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]])
    return swap @ to_centre @ rotation @ shift @ shearing @ zoom @ from_centre @ swap


def _map_index(i, n, mode):
    """Integer neighbour indices -> valid indices under ``mode`` (constant: clamped; masked later)."""
    if mode == "reflect":
        m = np.mod(i, 2 * n)
        return np.where(m >= n, 2 * n - 1 - m, m)
    return np.clip(i, 0, n - 1)


def _wrap_coordinate(r, n):
    """SciPy's 'wrap': a coordinate outside [0, n − 1] moves by multiples of n − 1."""
    if n <= 1:
        return np.zeros_like(r)
    return np.where((r < 0) | (r > n - 1), np.mod(r, n - 1), r)


def apply_affine_transform(x, matrices, fill_mode="nearest", cval=0.0):
    """Warp a batch ``x (n, h, w, c)`` with one 3×3 matrix per image ``(n, 3, 3)``."""
    if fill_mode not in FILL_MODES:
        raise ValueError(f"fill_mode must be one of {FILL_MODES}, received {fill_mode!r}")
    n, h, w, c = x.shape
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    grid = np.stack([rows.ravel(), cols.ravel(), np.ones(h * w)])          # (3, h·w)
    src = np.einsum("nij,jp->nip", matrices[:, :2, :], grid)               # (n, 2, h·w): input coordinates
    r, q = src[:, 0], src[:, 1]
    if fill_mode == "wrap":
        r, q = _wrap_coordinate(r, h), _wrap_coordinate(q, w)
    r0, q0 = np.floor(r).astype(np.int64), np.floor(q).astype(np.int64)
    fr, fq = (r - r0)[..., None], (q - q0)[..., None]
    batch = np.arange(n)[:, None]
    out = 0.0
    for dr, dq, weight in ((0, 0, (1 - fr) * (1 - fq)), (0, 1, (1 - fr) * fq),
                           (1, 0, fr * (1 - fq)), (1, 1, fr * fq)):
        out = out + weight * x[batch, _map_index(r0 + dr, h, fill_mode), _map_index(q0 + dq, w, fill_mode)]
    if fill_mode == "constant":
        eps = 1e-9
        outside = (r < -eps) | (r > h - 1 + eps) | (q < -eps) | (q > w - 1 + eps)
        out = np.where(outside[..., None], cval, out)
    return out.reshape(n, h, w, c).astype(x.dtype, copy=False)


def _range(value, name):
    if np.isscalar(value):
        if value < 0:
            raise ValueError(f"ImageDataGenerator: {name} must be >= 0, received {value!r}")
        return (1 - value, 1 + value) if name == "zoom_range" else (-value, value)
    lo, hi = value
    return float(lo), float(hi)


class ImageDataGenerator:
    """Keras's ``ImageDataGenerator`` (the arguments the tutorials use)."""

    def __init__(self, rescale=None, rotation_range=0.0, width_shift_range=0.0, height_shift_range=0.0,
                 shear_range=0.0, zoom_range=0.0, horizontal_flip=False, vertical_flip=False,
                 fill_mode="nearest", cval=0.0):
        if fill_mode not in FILL_MODES:
            raise ValueError(f"ImageDataGenerator: fill_mode must be one of {FILL_MODES}, received {fill_mode!r}")
        self.rescale = rescale
        self.rotation_range = _range(rotation_range, "rotation_range")
        self.width_shift_range = _range(width_shift_range, "width_shift_range")
        self.height_shift_range = _range(height_shift_range, "height_shift_range")
        self.shear_range = _range(shear_range, "shear_range")
        self.zoom_range = _range(zoom_range, "zoom_range")
        self.horizontal_flip, self.vertical_flip = horizontal_flip, vertical_flip
        self.fill_mode, self.cval = fill_mode, cval

    def random_transforms(self, n, h, w, rng):
        """Per image: (3×3 matrices (n, 3, 3), horizontal flips (n,), vertical flips (n,))."""
        def draw(bounds):
            return rng.uniform(bounds[0], bounds[1], n) if bounds[0] != bounds[1] else np.full(n, bounds[0])
        tx = draw(self.height_shift_range)
        ty = draw(self.width_shift_range)
        tx = tx * h if max(map(abs, self.height_shift_range)) < 1 else tx   # fractions of the size
        ty = ty * w if max(map(abs, self.width_shift_range)) < 1 else ty
        theta, shear = draw(self.rotation_range), draw(self.shear_range)
        zx, zy = draw(self.zoom_range), draw(self.zoom_range)
        matrices = np.stack([affine_matrix(*p, h=h, w=w) for p in zip(theta, tx, ty, shear, zx, zy)]) \
            if n else np.zeros((0, 3, 3))
        flip_h = (rng.random(n) < 0.5) & self.horizontal_flip
        flip_v = (rng.random(n) < 0.5) & self.vertical_flip
        return matrices, flip_h, flip_v

    def augment(self, x, rng):
        """A randomly transformed copy of the batch ``x (n, h, w, c)``, then rescaled."""
        original = x = np.asarray(x, dtype=np.float32)
        n, h, w, _ = x.shape
        matrices, flip_h, flip_v = self.random_transforms(n, h, w, rng)
        if not np.allclose(matrices, np.eye(3)):
            x = apply_affine_transform(x, matrices, self.fill_mode, self.cval)
        if (flip_h.any() or flip_v.any()) and x is original:
            x = x.copy()                                    # never modify the caller's array
        if flip_h.any():
            x[flip_h] = x[flip_h, :, ::-1]
        if flip_v.any():
            x[flip_v] = x[flip_v, ::-1]
        return x * np.float32(self.rescale) if self.rescale else x

    def flow(self, x, y=None, batch_size=32, shuffle=True, seed=None):
        """Augmented batches of in-memory arrays: a sequence ``fit`` accepts."""
        return ArrayFlow(self, x, y, batch_size, shuffle, seed)

    def flow_from_directory(self, directory, target_size=(256, 256), color_mode="rgb", classes=None,
                            class_mode="categorical", batch_size=32, shuffle=True, seed=None):
        """Augmented batches from a folder of class sub-folders (Keras's class_mode names)."""
        from ..datasets.directory import ImageFolderBatches, index_directory
        modes = {"categorical": "categorical", "binary": "binary", "sparse": "int", None: None}
        if class_mode not in modes:
            raise ValueError(f"flow_from_directory: class_mode must be one of {list(modes)}, received {class_mode!r}")
        paths, labels, names = index_directory(directory, classes)
        rng = np.random.default_rng(seed)
        batches = ImageFolderBatches(paths, labels, names, target_size, batch_size, modes[class_mode],
                                     color_mode, shuffle, seed, transform=lambda x: self.augment(x, rng))
        batches.on_epoch_end()
        batches.class_indices = {name: i for i, name in enumerate(names)}
        batches.samples = len(paths)
        return batches


class ArrayFlow:
    def __init__(self, generator, x, y, batch_size, shuffle, seed):
        if y is not None and len(x) != len(y):
            raise ValueError(f"flow: x and y must have the same length, received {len(x)} and {len(y)}")
        self.generator, self.x, self.y = generator, np.asarray(x), y
        self.batch_size, self.shuffle = batch_size, shuffle
        self.rng = np.random.default_rng(seed)
        self.on_epoch_end()

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def on_epoch_end(self):
        self.order = self.rng.permutation(len(self.x)) if self.shuffle else np.arange(len(self.x))

    def __getitem__(self, i):
        if i >= len(self):
            raise IndexError(i)
        idx = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        xb = self.generator.augment(self.x[idx], self.rng)
        return xb if self.y is None else (xb, self.y[idx])

    def __iter__(self):
        return self

    def __next__(self):
        """Keras's iterator: batch after batch, a new epoch (reshuffled) after the last, forever."""
        self.position = getattr(self, "position", -1) + 1
        if self.position == len(self):
            self.on_epoch_end()
            self.position = 0
        return self[self.position]


from ..utils import array_to_img, img_to_array, load_img, save_img  # noqa: E402,F401  (keras.preprocessing.image)
