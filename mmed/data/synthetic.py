"""Procedural synthetic medical VQA set: seven modalities, closed questions about a local finding.

``make_synthetic(n, seed)`` draws ``n`` items in the schema of :mod:`mmed.data.schema`
(``dataset="synthetic"``), needing no download, for the ``smoke`` and ``demo`` profiles
(docs/architecture.md#profiles) and for tests.

Modalities (one per specialty; the keyword rules of docs/architecture.md#specialties are *not* applied to these names):

========================  ===============  =====================================================
modality                  specialty        look (texture / shape cues a model can learn)
========================  ===============  =====================================================
synthetic-xray            Radiologist      grayscale chest: body outline, dark lungs, ribs,
                                           spine; sharp edges. Finding: bright *nodule*
synthetic-pet-oncology    Oncologist       grayscale whole body, blurred and 2x2-pixelated
                                           (low resolution), bright brain/bladder. Finding:
                                           focal *hot spot* in the torso
synthetic-thyroid-us      Endocrinologist  grayscale ultrasound fan (black corners),
                                           multiplicative speckle, two thyroid lobes beside the
                                           trachea. Finding: dark (hypoechoic) *nodule*
synthetic-he-histology    Pathologist      pink eosin field, purple nuclei, white spaces.
                                           Finding: dark purple *nest of atypical nuclei*
synthetic-fundus          Ophthalmologist  orange retina in a black circle, yellow optic disc,
                                           dark-red vessels. Finding: *haemorrhage* (blot)
synthetic-dermoscopy      Dermatologist    skin tone, dermatoscope vignette, hairs. Finding:
                                           brown *pigmented lesion* with an irregular border
synthetic-endoscopy       Surgeon          pink mucosa, dark lumen with folds, circular view,
                                           specular highlights. Finding: red *polyp*
========================  ===============  =====================================================

Questions (generator v2). Every item is a closed question about the finding; the answer is
fixed by a *local* feature drawn into the image (``meta["question_type"]``). Options are
the type's values in a fixed order (:data:`QUESTION_VALUES`), so three quarters of the items
(size, count) have four options and a quarter (presence, side) two — report them apart:

- ``size`` (4 of every 8 items of a specialty): "How large is the <finding>?" options
  ``(tiny, small, medium, large)``: radius 0.034–0.042, 0.050–0.058, 0.066–0.074 and
  0.084–0.094 of the image side (gaps, so an answer is never borderline).
- ``count`` (2 of 8): "How many <findings> are visible ...?" options ``(1, 2, 3, 4)``.
- ``presence`` (1 of 8): "Is there a <finding> ...?" options ``(yes, no)``
  (docs/architecture.md#multiple-choice-from-closed-questions).
- ``side`` (1 of 8): "Is the <finding> on the left or the right side of the image?" (image
  left, not patient left) options ``(left, right)``.

Why v2. Version 1 asked mostly two-option questions (80% of its
held-out items), where contradicting a unanimous wrong panel is always right, so the Hard
stratum could not tell reading the image from contrarianism; its findings (radius down to
0.028 of the side) were smaller than one patch of the tiny model's vision tower; and the
side/size options came in a random order, which a two-layer language model from scratch
did not learn to combine with the image. v2 draws larger findings, fixes the option order
and makes four-option questions the majority. What the tiny model can read of it is
measured, not assumed (``benchmarks/RESULTS.md``).

Answers carry no global colour signal: every image also holds *decoy* structures —
elongated lines (lung markings, vessels, spindle nuclei, hairs, ...) in the finding's exact
colour, with the same one-pixel antialiased edge, inside the same organ — whose amount tops
the finding up to two per-image totals drawn independently of the answer: the alpha mass
and the core area (pixels at full colour; thin and thick lines set the two apart, see
:func:`_decoys`). Presence, count and size therefore change *where* and *in what shape*
(round vs elongated) the finding colour sits, not how much of it there is or how much of
it is edge; a colour histogram sees about the majority rate (tests/test_synthetic.py
measures it, also within each modality). The three grayscale modalities share one
palette and their display is gamma-windowed to a mean intensity drawn from one
distribution, so mean colour does not tell them apart — texture and shape do.

Difficulty ``d`` in [0, 1]: finding and decoys are drawn in ``contrast * colour + (1 -
contrast) * organ mean colour`` with ``contrast = 1 - 0.6 d`` (opaque, so their pixels do not
depend on what lies beneath), and Gaussian pixel noise of standard
deviation ``noise = 0.01 + 0.07 d`` (intensity units, image in [0, 1]) is added.

Determinism and disjoint sets. Item ``index`` of split ``split`` under ``seed`` is drawn
from its own random stream keyed by ``(SYNTHETIC_VERSION, seed, split, index)``;
the assignment of specialty / question type / answer is balanced within consecutive
blocks of indices by seeded permutations of the same key. Hence:

- same arguments → byte-identical PNGs and items; ``make_synthetic(n)`` is a prefix of
  ``make_synthetic(n + m)``; items may be drawn in worker processes (``workers``), which
  changes nothing in them;
- ``split="train"`` and ``split="test"`` with the same seed are different streams, so a
  train and an eval set made as ``make_synthetic(n_train, seed, split="train")`` and
  ``make_synthetic(n_eval, seed, split="test")`` share no image (checked by content hash in
  the tests); so are different seeds, and so are disjoint index ranges
  (``index_offset=n_train``) within one split.

``image_ref`` is ``synthetic://v1/<modality>/<question_type>/<value>?seed=..&split=..&index=..
&size=..&difficulty=..``; :func:`redraw` regenerates the identical image from it. The ref
names the drawn feature (it must: it fixes the image), so never put ``image_ref`` into a
model's prompt.
"""

from __future__ import annotations

import functools
import io
import math
import zlib
from dataclasses import dataclass
from typing import Callable, Sequence
from urllib.parse import parse_qs, urlencode, urlsplit

import datasets
import numpy as np
import PIL.Image

from ..processes import can_spawn_workers
from .schema import COLUMNS, FEATURES, SPECIALTIES, Item

#: Version of the generator; part of every random-stream key and of ``image_ref``.
SYNTHETIC_VERSION: int = 2
#: The closed-question types, each fixed by one local feature of the finding.
SYNTHETIC_QUESTION_TYPES: tuple[str, ...] = ("presence", "side", "count", "size")
#: Accepted ``image_size`` range (pixels per side); tiny models see <= 112 px (docs/architecture.md#profiles).
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 64, 112
#: Count answers range over 1..MAX_COUNT (every count question offers all of them).
MAX_COUNT: int = 4
#: The answer values of each question type, in their (fixed) option order: the options of an
#: item are exactly these, so options are lettered the same way in every item of a type.
QUESTION_VALUES: dict[str, tuple[str, ...]] = {
    "presence": ("yes", "no"),
    "side": ("left", "right"),
    "count": tuple(str(i) for i in range(1, MAX_COUNT + 1)),
    "size": ("tiny", "small", "medium", "large"),
}
#: Question types of one balancing block of 8 items of a specialty: three quarters of the
#: questions have four options (size, count), one quarter two (presence, side).
TYPE_SLOTS: tuple[str, ...] = ("size", "size", "size", "size", "count", "count", "presence", "side")

_REF_SCHEME = "synthetic"
_F32 = np.float32

# Finding radii as fractions of the image side (see module docstring): sized for a vision
# tower with 7-pixel patches at <= 112 px (a disc spans one or more patches).
_R_SIZE: dict[str, tuple[float, float]] = {
    "tiny": (0.034, 0.042), "small": (0.050, 0.058), "medium": (0.066, 0.074), "large": (0.084, 0.094)}
_R_SINGLE = (0.060, 0.080)  # presence / side
_R_COUNT = (0.040, 0.050)
#: per-image total alpha mass of finding + decoys, as a fraction of S*S; its lower end is
#: above the largest finding mass (4 blobs of radius 0.050: 0.0314; one of 0.094: 0.0278)
_MASS = (0.040, 0.054)
#: per-image core fraction of that mass (core: alpha >= 0.95); the range where the
#: decoys' core/mass ratio (thin ~0.17 .. thick ~0.77) can complete every finding
_CORE_FRAC = (0.60, 0.75)
#: decoy drawing passes (one top-up) and their stopping tolerance on the alpha mass
_DECOY_PASSES, _DECOY_TOL = 2, 0.04
#: widths of thin and thick decoy lines, fractions of the side
_THIN, _THICK = 0.018, 0.045


# ----------------------------------------------------------------------------------------
# small numpy/PIL helpers (all float32 in [0, 1], arrays (S, S) or (S, S, 3))
# ----------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(u, v)`` in [0, 1): u = column (x), v = row (y)."""
    c = (np.arange(size, dtype=_F32) + 0.5) / size
    v, u = np.meshgrid(c, c, indexing="ij")
    v.flags.writeable = False
    u.flags.writeable = False
    return u, v


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Band-limited noise (S, S), about N(0, 1): a cells x cells Gaussian grid, bicubic upsampled."""
    small = rng.standard_normal((cells, cells)).astype(_F32)
    return np.asarray(PIL.Image.fromarray(small, mode="F").resize((size, size), PIL.Image.BICUBIC))


def _ellipse(u: np.ndarray, v: np.ndarray, cx: float, cy: float, ax: float, ay: float, soft: float) -> np.ndarray:
    """Soft ellipse mask in [0, 1]; ``soft`` is the edge width in units of the normalised radius."""
    d = np.sqrt(((u - cx) / ax) ** 2 + ((v - cy) / ay) ** 2)
    return np.clip((1.0 - d) / soft + 0.5, 0.0, 1.0).astype(_F32)


@functools.lru_cache(maxsize=32)
def _gauss_taps(sigma: float) -> np.ndarray:
    """Unit-sum Gaussian taps of half-width ceil(2.5 sigma) (float32)."""
    r = int(math.ceil(2.5 * sigma))
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-(x**2) / (2 * sigma**2))
    return (k / k.sum()).astype(_F32)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur over the last two axes (zero padding); separable shifted sums, ``sigma`` in px."""
    k = _gauss_taps(sigma)
    r = len(k) // 2
    h, w = img.shape[-2:]
    p = np.zeros(img.shape[:-2] + (h + 2 * r, w + 2 * r), _F32)  # zero padding (np.pad is slower)
    p[..., r : r + h, r : r + w] = img
    tmp = k[0] * p[..., 0:w]
    for i in range(1, len(k)):
        tmp += k[i] * p[..., i : i + w]
    out = k[0] * tmp[..., 0:h, :]
    for i in range(1, len(k)):
        out += k[i] * tmp[..., i : i + h, :]
    return out


def _splat(size: int, x: np.ndarray, y: np.ndarray, w: np.ndarray, layer: np.ndarray | None = None) -> np.ndarray:
    """Bilinear splat of weights ``w`` at pixel coordinates (x, y) (pixel centres at i + 0.5).

    Returns (S, S), or (L, S, S) when ``layer`` (int array, values 0..L-1) says which map
    each point goes to.
    """
    n_layers = 1 if layer is None else int(layer.max(initial=0)) + 1
    base = 0 if layer is None else layer * size * size
    x = x - 0.5
    y = y - 0.5
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    fx = x - x0
    fy = y - y0
    out = np.zeros(n_layers * size * size, dtype=np.float64)
    for dx, dy, ww in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = x0 + dx, y0 + dy
        ok = (xi >= 0) & (xi < size) & (yi >= 0) & (yi < size)
        idx = (base + yi * size + xi)[ok] if layer is not None else (yi * size + xi)[ok]
        out += np.bincount(idx, weights=(w * ww)[ok], minlength=n_layers * size * size)
    return out.reshape(size, size) if layer is None else out.reshape(n_layers, size, size)


def _long_runs(keep: np.ndarray, seg: np.ndarray, min_pts: int) -> np.ndarray:
    """Mask of the points of ``keep`` that lie in a run of >= ``min_pts`` consecutive kept
    points of one line (``seg``: line id per point)."""
    if min_pts <= 1 or len(keep) == 0:
        return keep
    new_run = np.ones(len(keep), bool)
    new_run[1:] = (keep[1:] != keep[:-1]) | (seg[1:] != seg[:-1])
    run = np.cumsum(new_run) - 1
    return keep & (np.bincount(run)[run] >= min_pts)


def _polylines(
    rng: np.random.Generator,
    region: np.ndarray,
    starts: np.ndarray,
    total_len: float,
    seg_len: tuple[float, float],
    bend: float,
    origin: tuple[float, float, float] | None = None,
    min_len: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Points (x, y), 0.5 px apart, along random curved lines, ``total_len`` px of them inside ``region``.

    Lines start at random rows of ``starts`` ((k, 2) pixel (x, y), the pixels of ``region``,
    a bool (S, S) mask) — or, with ``origin=(x, y,
    radius)``, on a circle around that point heading outwards (fundus vessels); each has a
    length drawn from ``seg_len`` (pixels) and turns by up to ``bend`` radians in total.
    Points outside ``region`` are dropped; each round draws ``need / frac`` (``frac`` the
    kept fraction measured so far) and keeps the first ``need`` of it, at most 8 rounds.
    Pieces shorter than ``min_len`` px (where the region cuts a line) are dropped too, so
    no stub can pass for a round finding.
    """
    step = 0.5
    min_pts = int(math.ceil(min_len / step))
    size = region.shape[0]
    xs, ys = [], []
    kept = 0.0
    frac = 0.45  # expected fraction of a round's points kept (inside, long runs); then measured
    for _ in range(8):
        need = total_len - kept
        if need <= max(step, min_len, 0.03 * total_len) or len(starts) == 0:
            break  # (a shorter piece could not be added anyway)
        draw = need / frac
        k = int(draw / seg_len[0]) + 1
        lengths = rng.uniform(seg_len[0], seg_len[1], k)
        k = int(np.searchsorted(np.cumsum(lengths), draw)) + 1  # segments needed
        lengths = lengths[:k]
        lengths[-1] -= max(float(lengths.sum()) - draw, 0.0)  # trim the last one
        th0 = rng.uniform(0, 2 * np.pi, k)
        turn = rng.uniform(-bend, bend, k)
        if origin is None:
            x0, y0 = starts[rng.integers(len(starts), size=k)].T
        else:
            x0 = origin[0] + origin[2] * np.cos(th0)
            y0 = origin[1] + origin[2] * np.sin(th0)
        n = np.maximum((lengths / step).astype(np.int64), 2)
        seg = np.repeat(np.arange(k), n)
        first = np.cumsum(n) - n
        t = (np.arange(len(seg)) - first[seg]) / (n[seg] - 1)
        th = th0[seg] + turn[seg] * t
        dx, dy = np.cumsum(step * np.cos(th)), np.cumsum(step * np.sin(th))
        x = x0[seg] + dx - (dx[first] - step * np.cos(th[first]))[seg]
        y = y0[seg] + dy - (dy[first] - step * np.sin(th[first]))[seg]
        xi, yi = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
        inside = (xi >= 0) & (xi < size) & (yi >= 0) & (yi < size)
        inside[inside] = region[yi[inside], xi[inside]]
        inside &= _long_runs(inside, seg, min_pts)
        n_in = int(inside.sum())
        frac = max(step * n_in / draw, 0.05)
        take = min(n_in, int(math.ceil(need / step)))  # the last line ends where the length is reached
        if 0 < n_in - take < min_pts:
            take = n_in  # do not leave a stub behind either
        kx, ky = x[inside][:take], y[inside][:take]
        tail = _long_runs(np.ones(take, bool), seg[inside][:take], min_pts)  # a cut last run may be short
        xs.append(kx[tail])
        ys.append(ky[tail])
        kept += step * int(tail.sum())
    if not xs:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(xs), np.concatenate(ys)


def _hard_lines(size: int, lines: Sequence[tuple[np.ndarray, np.ndarray, float]]) -> np.ndarray:
    """Alpha map (S, S): union of line sets ``(x, y, width)`` (points 0.5 px apart, width in px).

    Same edge as a finding disc — alpha 1 inside, a one-pixel antialiased ramp — so that
    decoys and findings add the same alpha levels. The distance to the line is read off
    the Gaussian-blurred point density: a straight line of unit density blurred with
    ``sigma`` has profile ``exp(-d^2 / 2 sigma^2) / (sqrt(2 pi) sigma)``, inverted for ``d``
    (crossings give d = 0; line ends are rounded). One blur serves all sets (sigma set by
    the widest).
    """
    lines = [(x, y, w) for x, y, w in lines if len(x)]
    if not lines:
        return np.zeros((size, size), _F32)
    sigma = 0.3 * max(w for _, _, w in lines) + 0.8
    x = np.concatenate([ln[0] for ln in lines])
    y = np.concatenate([ln[1] for ln in lines])
    layer = np.concatenate([np.full(len(ln[0]), i) for i, ln in enumerate(lines)])
    dens = _blur(_splat(size, x, y, np.full(x.shape, 0.5), layer), sigma)
    peak = 1.0 / (math.sqrt(2 * math.pi) * sigma)
    ratio = np.maximum(dens, peak * 1e-6) / peak
    d = sigma * np.sqrt(2 * np.maximum(-np.log(ratio), 0.0))
    widths = np.array([w for _, _, w in lines], _F32)[:, None, None]
    return np.clip(widths / 2 + 0.5 - d, 0.0, 1.0).max(axis=0).astype(_F32)


@functools.lru_cache(maxsize=256)
def _line_rates(width: float, length: float) -> tuple[float, float]:
    """(alpha mass, core area) per pixel of length of a straight :func:`_hard_lines` segment
    ``length`` px long (its rounded, shortened ends included); core = alpha >= 0.95."""
    masses, cores = [], []
    for off in (0.0, 0.25, 0.5, 0.75):
        x = np.arange(0.0, length, 0.5) + 64 - length / 2 + off
        a = _hard_lines(128, [(x, np.full(x.shape, 64.0 + off), width)])
        masses.append(float(a.sum()) / length)
        cores.append(float((a >= _CORE_ALPHA).sum()) / length)
    return float(np.mean(masses)), float(np.mean(cores))


#: alpha at and above which a pixel counts as "core" (full finding colour) in mass matching
_CORE_ALPHA = 0.95


def _dots(rng: np.random.Generator, size: int, n: int, radius: float, peak: float) -> np.ndarray:
    """Alpha map (S, S) of ``n`` round blurred dots of about ``radius`` pixels at uniform positions."""
    x = rng.uniform(0, size, n)
    y = rng.uniform(0, size, n)
    sigma = radius / 1.2
    w = np.full(n, peak * 2 * math.pi * sigma**2)
    return np.clip(_blur(_splat(size, x, y, w), sigma), 0.0, 1.0)


def _blob_alpha(size: int, cx: float, cy: float, r: float, profile: str, rng: np.random.Generator) -> np.ndarray:
    """Alpha map (S, S) of one finding blob centred at pixel (cx, cy), radius ``r`` pixels.

    ``profile``: ``disc`` (antialiased) or ``irregular`` (radius modulated by angle,
    dermoscopy). Both are flat (alpha 1) inside with a one-pixel antialiased edge, like the
    saturated core of a decoy line, so the finding adds no alpha level the decoys lack
    (an inner texture or shading would, and a colour histogram then reads the answer).
    """
    a = np.zeros((size, size), _F32)
    half = int(math.ceil(r * 1.6)) + 2
    x0, x1 = max(int(cx) - half, 0), min(int(cx) + half + 1, size)
    y0, y1 = max(int(cy) - half, 0), min(int(cy) + half + 1, size)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(_F32) + 0.5
    dx, dy = xx - cx, yy - cy
    d = np.sqrt(dx**2 + dy**2)
    if profile == "irregular":
        th = np.arctan2(dy, dx)
        p1, p2 = rng.uniform(0, 2 * np.pi, 2)
        reff = r * (1 + 0.14 * np.sin(3 * th + p1) + 0.08 * np.sin(5 * th + p2))
        patch = np.clip(reff - d + 0.5, 0, 1)
    else:
        patch = np.clip(r - d + 0.5, 0, 1)
    a[y0:y1, x0:x1] = patch
    return a


def _gamma_to_mean(img: np.ndarray, target: float) -> np.ndarray:
    """Display windowing: ``img ** g`` with ``g`` chosen (bisection on a histogram) so the mean is ``target``."""
    hist = np.bincount(np.clip((img * 255).astype(np.int64), 0, 255).ravel(), minlength=256)
    means = (_GAMMA_POW * hist).sum(axis=1) / hist.sum()  # mean(img ** g) for each g of the grid; decreasing in g
    lg = float(np.interp(-target, -means, np.log(_GAMMAS)))
    return np.power(img, _F32(math.exp(lg)), dtype=_F32)


#: grid of display gammas tried by :func:`_gamma_to_mean`, and bin-centre powers
_GAMMAS = np.exp(np.linspace(math.log(0.2), math.log(5.0), 97))
_GAMMA_POW = ((np.arange(256) + 0.5) / 256)[None, :] ** _GAMMAS[:, None]


# ----------------------------------------------------------------------------------------
# the seven modalities: background renderers return (background, finding field, decoy spec)
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Scene:
    """What a background renderer returns.

    ``image``: (S, S) gray or (S, S, 3) RGB float32 in [0, 1]; ``field``: bool (S, S) where a
    finding's centre may go; ``region``: bool (S, S), the organ the finding lies in — decoy
    lines start in it and are cut to it, so finding and decoys blend with the same
    background; ``origin``: optional (x, y, radius) for lines that leave a point (fundus).
    """

    image: np.ndarray
    field: np.ndarray
    region: np.ndarray
    origin: tuple[float, float, float] | None = None


def _pixels(mask: np.ndarray) -> np.ndarray:
    """(k, 2) pixel-centre (x, y) coordinates of True pixels of ``mask``."""
    yi, xi = np.nonzero(mask)
    return np.stack([xi + 0.5, yi + 0.5], axis=1).astype(_F32)


def _bg_xray(rng: np.random.Generator, size: int) -> _Scene:
    """Chest X-ray (PA) look: air, body outline, two dark lungs with ribs, bright spine."""
    u, v = _grid(size)
    jx, jy = rng.uniform(-0.03, 0.03, 2)
    body = _ellipse(u, v, 0.5 + jx, 0.6 + jy, rng.uniform(0.40, 0.47), 0.56, 0.08)
    img = 0.05 + 0.50 * body
    lungs = np.zeros_like(u)
    inner = np.zeros(u.shape, bool)
    region = np.zeros(u.shape, bool)
    for s in (-1, 1):
        cx, cy = 0.5 + jx + s * rng.uniform(0.17, 0.21), 0.5 + jy
        ax, ay = rng.uniform(0.12, 0.15), rng.uniform(0.26, 0.31)
        lungs = np.maximum(lungs, _ellipse(u, v, cx, cy, ax, ay, 0.25))
        inner |= _ellipse(u, v, cx, cy, ax - 0.045, ay - 0.06, 0.01) > 0.5
        region |= _ellipse(u, v, cx, cy, ax - 0.01, ay - 0.02, 0.01) > 0.5
    img = img - 0.30 * lungs
    spine = np.clip(1.0 - np.abs(u - 0.5 - jx) / 0.035, 0, 1) * body
    img = img + 0.25 * spine
    phase = v * rng.uniform(6.5, 8.0) + 2.0 * (u - 0.5 - jx) ** 2 + rng.uniform(0, 1)
    ribs = (0.5 + 0.5 * np.cos(2 * np.pi * phase)) ** 6
    img = img + 0.16 * ribs * lungs
    img = img + 0.03 * _smooth_noise(rng, size, 6)
    return _Scene(np.clip(img, 0, 1).astype(_F32), inner, region)


def _bg_pet(rng: np.random.Generator, size: int) -> _Scene:
    """Whole-body PET look: dark background, faint body, bright brain, heart, kidneys, bladder."""
    u, v = _grid(size)
    jx = rng.uniform(-0.03, 0.03)
    c = 0.5 + jx
    head = _ellipse(u, v, c, 0.11, 0.075, 0.085, 0.3)
    neck = _ellipse(u, v, c, 0.21, 0.04, 0.05, 0.3)
    torso = _ellipse(u, v, c, 0.47, rng.uniform(0.19, 0.23), 0.27, 0.15)
    pelvis = _ellipse(u, v, c, 0.78, 0.18, 0.14, 0.2)
    legs = _ellipse(u, v, c - 0.08, 0.97, 0.06, 0.12, 0.3) + _ellipse(u, v, c + 0.08, 0.97, 0.06, 0.12, 0.3)
    body = np.clip(np.maximum.reduce([head, neck, torso, pelvis, legs]), 0, 1)
    img = 0.03 + rng.uniform(0.18, 0.26) * body * (1 + 0.25 * _smooth_noise(rng, size, 8))
    organs = [
        (c, 0.10, 0.055, 0.06, rng.uniform(0.6, 0.8)),  # brain
        (c + 0.04, 0.36, 0.045, 0.04, rng.uniform(0.3, 0.55)),  # heart
        (c - 0.08, 0.47, 0.09, 0.06, rng.uniform(0.3, 0.4)),  # liver
        (c - 0.07, 0.58, 0.025, 0.04, rng.uniform(0.35, 0.5)),  # kidneys
        (c + 0.07, 0.58, 0.025, 0.04, rng.uniform(0.35, 0.5)),
        (c, 0.84, 0.045, 0.035, rng.uniform(0.7, 0.95)),  # bladder
    ]
    for cx, cy, ax, ay, val in organs:
        img = np.maximum(img, val * _ellipse(u, v, cx, cy, ax, ay, 0.6))
    img = _pixelate(_blur(img, 0.8))  # PET resolution: blurred, on a coarse 2x2 grid
    field = _ellipse(u, v, c, 0.47, 0.16, 0.21, 0.01) > 0.5
    region = _ellipse(u, v, c, 0.47, 0.19, 0.25, 0.01) > 0.5
    return _Scene(np.clip(img, 0, 1).astype(_F32), field, region)


def _bg_thyroid_us(rng: np.random.Generator, size: int) -> _Scene:
    """Transverse thyroid ultrasound: fan-shaped field, strap muscles, two lobes, trachea with shadow."""
    u, v = _grid(size)
    ay0 = -0.25
    rr = np.sqrt((u - 0.5) ** 2 + (v - ay0) ** 2)
    th = np.arctan2(u - 0.5, v - ay0)
    fan = ((np.abs(th) < 0.60) & (rr > 0.32) & (rr < 1.2)).astype(_F32)
    img = 0.40 + 0.05 * _smooth_noise(rng, size, 7)
    img = img - 0.12 * ((rr > 0.34) & (rr < 0.44))  # strap muscles
    jy = rng.uniform(-0.03, 0.03)
    field = np.zeros(u.shape, bool)
    region = np.zeros(u.shape, bool)
    for s in (-1, 1):
        cx = 0.5 + s * rng.uniform(0.21, 0.25)
        ax, ay = rng.uniform(0.15, 0.18), rng.uniform(0.12, 0.15)
        lobe = _ellipse(u, v, cx, 0.60 + jy, ax, ay, 0.2)
        img = img + 0.15 * lobe
        field |= _ellipse(u, v, cx, 0.60 + jy, 0.10, 0.07, 0.01) > 0.5
        region |= _ellipse(u, v, cx, 0.60 + jy, ax - 0.02, ay - 0.02, 0.01) > 0.5
    tr = np.sqrt((u - 0.5) ** 2 + (v - 0.55 - jy) ** 2)
    img = np.where(tr < 0.07, 0.05, img)
    img = img + 0.45 * np.clip(1 - np.abs(tr - 0.072) / 0.012, 0, 1)
    img = np.where((np.abs(u - 0.5) < 0.06) & (v > 0.62 + jy), img * 0.3, img)
    img = img * (1.15 - 0.35 * np.clip(rr - 0.3, 0, 1)) * fan
    return _Scene(np.clip(img, 0, 1).astype(_F32), field, region & (fan > 0))


def _bg_he(rng: np.random.Generator, size: int) -> _Scene:
    """H&E histology: pink eosin with fibre texture, white spaces, scattered purple nuclei."""
    u, v = _grid(size)
    pink = np.array([0.93, 0.66, 0.80], _F32) + rng.uniform(-0.04, 0.04, 3).astype(_F32)
    fib = _smooth_noise(rng, size, 12)
    img = pink[None, None, :] * (1 - 0.08 * fib[..., None]) + 0.0
    for _ in range(int(rng.integers(1, 5))):  # lumens / fat spaces
        m = _ellipse(u, v, *rng.uniform(0.1, 0.9, 2), *rng.uniform(0.04, 0.1, 2), 0.2)
        img = img * (1 - m[..., None]) + np.array([0.97, 0.94, 0.97], _F32) * m[..., None]
    n_nuc = int(rng.integers(60, 180) * (size / 96) ** 2)
    nuc = 0.85 * _dots(rng, size, n_nuc, 0.017 * size, 1.6)
    nuc_col = np.array([0.50, 0.30, 0.65], _F32)
    img = img * (1 - nuc[..., None]) + nuc_col * nuc[..., None]
    field = (u > 0.1) & (u < 0.9) & (v > 0.1) & (v < 0.9)
    region = (u > 0.04) & (u < 0.96) & (v > 0.04) & (v < 0.96)
    return _Scene(np.clip(img, 0, 1).astype(_F32), field, region)


def _bg_fundus(rng: np.random.Generator, size: int) -> _Scene:
    """Colour fundus photograph: orange retina in a black circle, yellow optic disc, dark macula."""
    u, v = _grid(size)
    d = np.sqrt((u - 0.5) ** 2 + (v - 0.5) ** 2)
    retina = np.clip((0.47 - d) / 0.01 + 0.5, 0, 1)
    base = np.array([0.82, 0.38, 0.12], _F32) + rng.uniform(-0.05, 0.05, 3).astype(_F32)
    shade = (1 - 0.5 * (d / 0.47) ** 2) * (1 + 0.06 * _smooth_noise(rng, size, 10))
    img = base * shade[..., None]
    side = 1 if rng.random() < 0.5 else -1
    dx, dy = 0.5 + side * rng.uniform(0.22, 0.27), 0.5 + rng.uniform(-0.05, 0.05)
    mac = _ellipse(u, v, 0.5 - side * 0.04, dy, 0.08, 0.08, 1.0)
    img = img * (1 - 0.35 * mac[..., None])
    disc = _ellipse(u, v, dx, dy, 0.06, 0.068, 0.3)
    img = img * (1 - disc[..., None]) + np.array([1.0, 0.88, 0.55], _F32) * disc[..., None]
    img = img * retina[..., None]
    dd = np.sqrt((u - dx) ** 2 + (v - dy) ** 2)
    field = (d < 0.38) & (dd > 0.14)
    origin = (dx * size, dy * size, 0.05 * size)
    return _Scene(np.clip(img, 0, 1).astype(_F32), field, (d < 0.44) & (dd > 0.075), origin)


def _bg_dermoscopy(rng: np.random.Generator, size: int) -> _Scene:
    """Dermoscopy: skin tone with blotches and furrows inside a dark dermatoscope vignette."""
    u, v = _grid(size)
    skin = np.array([0.90, 0.70, 0.58], _F32) + rng.uniform(-0.06, 0.04, 3).astype(_F32)
    blot = _smooth_noise(rng, size, 5)
    ang = rng.uniform(0, np.pi)
    furrow = np.cos(2 * np.pi * (np.cos(ang) * u + np.sin(ang) * v) * rng.uniform(10, 16))
    img = skin * (1 + 0.05 * blot[..., None] + 0.025 * furrow[..., None])
    d = np.sqrt((u - 0.5) ** 2 + (v - 0.5) ** 2)
    vig = np.clip((0.56 - d) / 0.04 + 0.5, 0, 1)
    img = img * vig[..., None] + 0.08 * (1 - vig[..., None])
    field = d < 0.38
    return _Scene(np.clip(img, 0, 1).astype(_F32), field, d < 0.48)


def _bg_endoscopy(rng: np.random.Generator, size: int) -> _Scene:
    """Endoscopy: pink mucosa with folds around a dark lumen, circular field of view."""
    u, v = _grid(size)
    lx, ly = 0.5 + rng.uniform(-0.15, 0.15, 2)
    dl = np.sqrt((u - lx) ** 2 + (v - ly) ** 2)
    mucosa = np.array([0.88, 0.50, 0.45], _F32) + rng.uniform(-0.05, 0.05, 3).astype(_F32)
    folds = np.cos(2 * np.pi * dl * rng.uniform(5, 8) + rng.uniform(0, 2 * np.pi))
    light = np.clip(0.35 + 2.5 * dl, 0.35, 1.0)  # darker towards the lumen
    img = mucosa * (light * (1 + 0.08 * folds + 0.04 * _smooth_noise(rng, size, 6)))[..., None]
    lr = rng.uniform(0.08, 0.12)
    lumen = np.clip((lr - dl) / 0.04 + 0.5, 0, 1)
    img = img * (1 - lumen[..., None]) + np.array([0.10, 0.02, 0.02], _F32) * lumen[..., None]
    d = np.sqrt((u - 0.5) ** 2 + (v - 0.5) ** 2)
    field = (d < 0.38) & (dl > lr + 0.09)
    return _Scene(np.clip(img, 0, 1).astype(_F32), field, (d < 0.46) & (dl > lr + 0.03))


@dataclass(frozen=True)
class SyntheticModality:
    """One synthetic modality: labels, wording, and how its finding and decoys look.

    Attributes:
        name: modality string of the items (``synthetic-...``).
        specialty: the triage label, one of :data:`~mmed.data.schema.SPECIALTIES`.
        organ: the ``organ`` field of the items.
        finding / findings: singular / plural noun used in the questions.
        where: phrase placing the finding ("in the lungs").
        grayscale: True for the shared gray palette (gamma-windowed to a common mean).
        colour: RGB in [0, 1] of the finding *and* of its decoys.
        profile: blob profile for :func:`_blob_alpha`.
        decoy_len: decoy line length range, fractions of the side.
        decoy_bend: maximal total turn of a decoy line, radians.
        background: renderer ``(rng, size) -> _Scene`` of the modality's look.
    """

    name: str
    specialty: str
    organ: str
    finding: str
    findings: str
    where: str
    grayscale: bool
    colour: tuple[float, float, float]
    profile: str
    decoy_len: tuple[float, float]
    decoy_bend: float
    background: Callable[[np.random.Generator, int], _Scene]


#: modality name → :class:`SyntheticModality`, in :data:`SPECIALTIES` order.
SYNTHETIC_MODALITIES: dict[str, SyntheticModality] = {
    m.name: m
    for m in (
        SyntheticModality(
            "synthetic-he-histology", "Pathologist", "tissue", "nest of atypical nuclei", "nests of atypical nuclei",
            "in this tissue section", grayscale=False, colour=(0.32, 0.12, 0.45), profile="disc",
            decoy_len=(0.08, 0.16), decoy_bend=0.6, background=_bg_he),
        SyntheticModality(
            "synthetic-xray", "Radiologist", "chest", "nodule", "nodules",
            "in the lungs", grayscale=True, colour=(0.92, 0.92, 0.92), profile="disc",
            decoy_len=(0.10, 0.22), decoy_bend=0.6, background=_bg_xray),
        SyntheticModality(
            "synthetic-endoscopy", "Surgeon", "colon", "polyp", "polyps",
            "in this endoscopic view", grayscale=False, colour=(0.66, 0.14, 0.17), profile="disc",
            decoy_len=(0.10, 0.25), decoy_bend=2.0, background=_bg_endoscopy),
        SyntheticModality(
            "synthetic-pet-oncology", "Oncologist", "whole body", "hot spot", "hot spots",
            "in the torso", grayscale=True, colour=(1.0, 1.0, 1.0), profile="disc",
            decoy_len=(0.12, 0.25), decoy_bend=0.5, background=_bg_pet),
        SyntheticModality(
            "synthetic-thyroid-us", "Endocrinologist", "thyroid", "hypoechoic nodule", "hypoechoic nodules",
            "in the thyroid", grayscale=True, colour=(0.06, 0.06, 0.06), profile="disc",
            decoy_len=(0.05, 0.12), decoy_bend=0.8, background=_bg_thyroid_us),
        SyntheticModality(
            "synthetic-fundus", "Ophthalmologist", "retina", "haemorrhage", "haemorrhages",
            "in the retina", grayscale=False, colour=(0.32, 0.04, 0.03), profile="disc",
            decoy_len=(0.20, 0.40), decoy_bend=1.2, background=_bg_fundus),
        SyntheticModality(
            "synthetic-dermoscopy", "Dermatologist", "skin", "pigmented lesion", "pigmented lesions",
            "on this skin", grayscale=False, colour=(0.40, 0.22, 0.13), profile="irregular",
            decoy_len=(0.25, 0.55), decoy_bend=0.7, background=_bg_dermoscopy),
    )
}
#: specialty → synthetic modality name.
MODALITY_OF_SPECIALTY: dict[str, str] = {m.specialty: m.name for m in SYNTHETIC_MODALITIES.values()}
if tuple(MODALITY_OF_SPECIALTY) != SPECIALTIES:  # one modality per specialty, in SPECIALTIES order
    raise RuntimeError(f"synthetic modalities cover {tuple(MODALITY_OF_SPECIALTY)}, expected {SPECIALTIES}")


def _pixelate(img: np.ndarray) -> np.ndarray:
    """2x2 block averaging of a (S, S) array (a coarse reconstruction grid, PET); odd edge kept."""
    s = img.shape[0]
    e = s - s % 2
    blk = img[:e, :e].reshape(e // 2, 2, e // 2, 2).mean(axis=(1, 3))
    out = img.copy()
    out[:e, :e] = np.repeat(np.repeat(blk, 2, axis=0), 2, axis=1)
    return out


def _post_us(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ultrasound speckle: multiplicative Rayleigh noise, blurred into grains (mean 1)."""
    sp = _blur(rng.rayleigh(1.0, img.shape).astype(_F32), 0.6)
    return img * (sp / float(sp.mean()))


def _post_endoscopy(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Endoscopy: specular highlights (white dots) and the circular field of view."""
    size = img.shape[0]
    spec = _dots(rng, size, int(rng.integers(3, 10)), rng.uniform(0.008, 0.016) * size, 2.0)
    img = img * (1 - spec[..., None]) + spec[..., None]
    u, v = _grid(size)
    d = np.sqrt((u - 0.5) ** 2 + (v - 0.5) ** 2)
    return img * np.clip((0.5 - d) / 0.02 + 0.5, 0, 1)[..., None]


_POST: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "synthetic-thyroid-us": _post_us,
    "synthetic-endoscopy": _post_endoscopy,
}


# ----------------------------------------------------------------------------------------
# references, plan and rendering
# ----------------------------------------------------------------------------------------
def _split_code(split: str) -> int:
    """Stable 32-bit code of a split name (crc32), for random-stream keys."""
    return zlib.crc32(split.encode("utf-8"))


@functools.lru_cache(maxsize=4096)
def _perm(seed: int, split: str, key: tuple[int, ...], k: int) -> tuple[int, ...]:
    """Seeded permutation of ``range(k)`` for one balancing block (cached: items share blocks)."""
    return tuple(int(i) for i in _rng(seed, split, *key).permutation(k))


def _rng(seed: int, split: str, *key: int) -> np.random.Generator:
    """The random stream keyed by ``(SYNTHETIC_VERSION, seed, split, *key)``."""
    return np.random.default_rng([SYNTHETIC_VERSION, seed, _split_code(split), *key])


def contrast_of(difficulty: float) -> float:
    """Weight of the finding's own colour, ``1 - 0.6 * difficulty``; the rest is the organ's mean colour."""
    return 1.0 - 0.6 * difficulty


def noise_of(difficulty: float) -> float:
    """Std of the additive Gaussian pixel noise (intensity in [0, 1]): ``0.01 + 0.07 * difficulty``."""
    return 0.01 + 0.07 * difficulty


@dataclass(frozen=True)
class SyntheticRef:
    """Everything that fixes one synthetic image; ``str(ref)`` is the item's ``image_ref``.

    ``value`` is the drawn feature, one of :data:`QUESTION_VALUES` of its question type:
    ``yes``/``no`` (presence), ``left``/``right`` (side), ``"1"``..``"4"`` (count),
    ``tiny``/``small``/``medium``/``large`` (size).
    """

    modality: str
    question_type: str
    value: str
    seed: int
    split: str
    index: int
    size: int
    difficulty: float

    def __str__(self) -> str:
        q = urlencode(
            {"seed": self.seed, "split": self.split, "index": self.index, "size": self.size,
             "difficulty": repr(float(self.difficulty))}
        )
        return f"{_REF_SCHEME}://v{SYNTHETIC_VERSION}/{self.modality}/{self.question_type}/{self.value}?{q}"

    def validate(self) -> "SyntheticRef":
        """Check every field; return ``self``. Raises :class:`ValueError` naming the field."""
        if self.modality not in SYNTHETIC_MODALITIES:
            raise ValueError(f"synthetic ref: unknown modality {self.modality!r}; known: {list(SYNTHETIC_MODALITIES)}")
        allowed = QUESTION_VALUES
        if self.question_type not in allowed:
            raise ValueError(f"synthetic ref: unknown question_type {self.question_type!r}; "
                             f"known: {SYNTHETIC_QUESTION_TYPES}")
        if self.value not in allowed[self.question_type]:
            raise ValueError(f"synthetic ref: value {self.value!r} not allowed for question_type "
                             f"{self.question_type!r}; allowed: {allowed[self.question_type]}")
        _check_args(1, self.seed, self.size, self.difficulty, self.split, self.index)
        return self


def parse_ref(ref: str) -> SyntheticRef:
    """Parse an ``image_ref`` made by :func:`make_synthetic` (see :class:`SyntheticRef`).

    Raises:
        ValueError: naming the ref and what is wrong (scheme, version, path, a missing or
            malformed query field, a value out of range).
    """
    parts = urlsplit(ref)
    if parts.scheme != _REF_SCHEME:
        raise ValueError(f"not a synthetic image_ref (scheme must be {_REF_SCHEME!r}): {ref!r}")
    if parts.netloc != f"v{SYNTHETIC_VERSION}":
        raise ValueError(f"synthetic image_ref {ref!r}: generator version {parts.netloc!r}, "
                         f"this code draws v{SYNTHETIC_VERSION}")
    path = parts.path.strip("/").split("/")
    if len(path) != 3:
        raise ValueError(f"synthetic image_ref {ref!r}: path must be <modality>/<question_type>/<value>")
    q = parse_qs(parts.query, keep_blank_values=True)
    fields = {}
    for key, typ in (("seed", int), ("split", str), ("index", int), ("size", int), ("difficulty", float)):
        if key not in q or len(q[key]) != 1:
            raise ValueError(f"synthetic image_ref {ref!r}: query field {key!r} missing or repeated")
        try:
            fields[key] = typ(q[key][0])
        except ValueError as e:
            raise ValueError(f"synthetic image_ref {ref!r}: query field {key!r}: {e}") from None
    return SyntheticRef(path[0], path[1], path[2], **fields).validate()


def _place(
    rng: np.random.Generator, field: np.ndarray, size: int, radii: Sequence[float], side: str | None
) -> list[tuple[float, float, float]]:
    """Non-overlapping blob centres inside ``field`` (pixel units); ``side`` restricts to a half.

    Blobs are separated by at least ``0.03 * size`` pixels of background. Placement is
    rejection sampling from this item's stream; if a blob does not fit after 200 tries its
    radius shrinks by 10% and it tries again (recorded radii are the drawn ones).
    """
    pts = _pixels(field)
    gap = 0.03 * size
    placed: list[tuple[float, float, float]] = []
    for r in radii:
        cand = pts
        if side is not None:
            margin = r + 0.03 * size
            cand = pts[pts[:, 0] < size / 2 - margin] if side == "left" else pts[pts[:, 0] > size / 2 + margin]
        if len(cand) == 0:
            raise RuntimeError(f"synthetic: no room for a blob of radius {r:.1f} px on side {side!r}")
        for attempt in range(2000):
            if attempt and attempt % 200 == 0:
                r *= 0.9
            x, y = cand[rng.integers(len(cand))] + rng.uniform(-0.5, 0.5, 2)
            if all((x - px) ** 2 + (y - py) ** 2 >= (r + pr + gap) ** 2 for px, py, pr in placed):
                placed.append((float(x), float(y), float(r)))
                break
        else:
            raise RuntimeError(f"synthetic: could not place {len(radii)} blobs")
    return placed


def _decoys(
    rng: np.random.Generator, scene: _Scene, af: np.ndarray, mod: SyntheticModality, size: int
) -> tuple[np.ndarray, dict]:
    """Decoy alpha map (S, S) that tops the finding's alpha up to answer-independent totals.

    Two totals are drawn per image, independently of the answer: the alpha mass
    ``A ~ U(_MASS) * S^2`` and the core area ``C = rho * A``, ``rho ~ U(_CORE_FRAC)``
    (pixels at alpha >= 0.95). Thin and thick lines (:data:`_THIN`, :data:`_THICK`
    of the side) have different core/mass ratios, so solving a 2x2 system for their
    lengths matches both; a second pass tops up what overlaps and the cut to
    ``scene.region`` removed (stopping within :data:`_DECOY_TOL` of both totals).
    Returns ``(alpha, stats)``: the decoys' alpha (S, S) and the finding's and decoys'
    masses and cores (pixels) for ``meta``.
    """
    a_tot = rng.uniform(*_MASS) * size * size
    c_tot = rng.uniform(*_CORE_FRAC) * a_tot
    a_f, c_f = float(af.sum()), int((af >= _CORE_ALPHA).sum())
    thin, thick = _THIN * size, _THICK * size
    keep = scene.region & (af == 0)  # decoys stay in the organ and never overdraw the finding
    starts = _pixels(scene.region)
    seg = (mod.decoy_len[0] * size, mod.decoy_len[1] * size)
    seg_thick = (max(seg[0], 4 * thick), max(seg[1], 6 * thick))  # thick lines stay elongated
    (m1, c1) = _line_rates(round(thin, 2), round(sum(seg) / 2))
    (m2, c2) = _line_rates(round(thick, 2), round(sum(seg_thick) / 2))
    ad = np.zeros((size, size), _F32)
    retained = 0.9  # fraction of drawn mass that survives overlaps and the cut (typical; then measured)
    for _ in range(_DECOY_PASSES):
        da = a_tot - a_f - float(ad.sum())
        dc = c_tot - c_f - float((ad >= _CORE_ALPHA).sum())
        if da <= _DECOY_TOL * a_tot and dc <= _DECOY_TOL * c_tot:
            break
        det = m1 * c2 - m2 * c1
        l1, l2 = (da * c2 - dc * m2) / det, (m1 * dc - c1 * da) / det
        if l1 < 0:
            l1, l2 = 0.0, da / m2
        elif l2 < 0:
            l1, l2 = da / m1, 0.0
        drawn = _hard_lines(size, [
            (*_polylines(rng, scene.region, starts, l1 / retained, seg, mod.decoy_bend, scene.origin, 3 * thin), thin),
            (*_polylines(rng, scene.region, starts, l2 / retained, seg_thick, mod.decoy_bend, scene.origin,
                         3 * thick), thick),
        ])
        before = float(ad.sum())
        ad = np.where(keep, np.maximum(ad, drawn), 0).astype(_F32)
        retained = max((float(ad.sum()) - before) / max(float(drawn.sum()), 1e-6), 0.2)
    stats = {"finding_mass": round(a_f, 1), "finding_core": c_f, "decoy_mass": round(float(ad.sum()), 1),
             "decoy_core": int((ad >= _CORE_ALPHA).sum())}
    return ad, stats


def render(ref: SyntheticRef | str) -> tuple[np.ndarray, dict]:
    """Draw the image of ``ref``.

    Returns:
        ``(pixels, feature)``: ``pixels`` uint8 (size, size, 3); ``feature`` a dict with
        ``blobs`` ([x, y, r] in pixels, x to the right, y down), ``finding_mass``,
        ``finding_core``, ``decoy_mass``, ``decoy_core`` (alpha mass and full-colour area,
        pixels; see :func:`_decoys`), ``contrast`` and ``noise`` (see :func:`contrast_of`,
        :func:`noise_of`) and, for grayscale modalities, ``mean_target`` (display mean).
    Raises:
        ValueError: for an invalid ref (see :func:`parse_ref`).
    """
    if isinstance(ref, str):
        ref = parse_ref(ref)
    else:
        ref.validate()
    mod = SYNTHETIC_MODALITIES[ref.modality]
    size = ref.size
    rng = _rng(ref.seed, ref.split, ref.index, 1)
    scene = mod.background(rng, size)

    qt, val = ref.question_type, ref.value
    side = None
    if qt == "presence":
        radii = [rng.uniform(*_R_SINGLE) * size] if val == "yes" else []
    elif qt == "side":
        radii, side = [rng.uniform(*_R_SINGLE) * size], val
    elif qt == "count":
        radii = list(rng.uniform(*_R_COUNT, int(val)) * size)
    else:
        radii = [rng.uniform(*_R_SIZE[val]) * size]
    blobs = _place(rng, scene.field, size, radii, side)

    af = np.zeros((size, size), _F32)
    for x, y, r in blobs:
        af = np.maximum(af, _blob_alpha(size, x, y, r, mod.profile, rng))
    ad, feature = _decoys(rng, scene, af, mod, size)
    contrast = contrast_of(ref.difficulty)
    alpha = np.clip(af + ad, 0, 1)
    img = scene.image
    # the finding's colour, pulled towards the organ's mean colour as difficulty grows; opaque,
    # so its pixels do not depend on what lies beneath (findings and decoys lie on different spots)
    organ = img[scene.region].mean(axis=0)
    if mod.grayscale:
        col = _F32(contrast * mod.colour[0] + (1 - contrast) * organ)
        img = img * (1 - alpha) + col * alpha
    else:
        col = (contrast * np.asarray(mod.colour, _F32) + (1 - contrast) * organ).astype(_F32)
        img = img * (1 - alpha[..., None]) + col * alpha[..., None]
    post = _POST.get(mod.name)
    if post is not None:
        img = post(img, rng)
    img = np.clip(img, 0, 1)
    feature = {"blobs": [[round(x, 2), round(y, 2), round(r, 2)] for x, y, r in blobs], **feature}
    noise = noise_of(ref.difficulty)
    if mod.grayscale:
        target = float(rng.uniform(0.22, 0.42))
        img = _gamma_to_mean(img, target)
        img = img + noise * rng.standard_normal(img.shape, dtype=_F32)
        img = np.repeat(img[..., None], 3, axis=2)
        feature["mean_target"] = round(target, 4)
    else:
        img = img + noise * rng.standard_normal(img.shape, dtype=_F32)
    feature["contrast"] = round(contrast, 4)
    feature["noise"] = round(noise, 4)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8), feature


def redraw(ref: SyntheticRef | str) -> PIL.Image.Image:
    """The RGB PIL image of a synthetic ``image_ref`` — pixel-identical to the one in the dataset.

    Raises:
        ValueError: for a ref that :func:`parse_ref` rejects.
    """
    return PIL.Image.fromarray(render(ref)[0], mode="RGB")


def _png(pixels: np.ndarray) -> bytes:
    """PNG bytes of a uint8 (S, S, 3) array (zlib level 1: fast, and still lossless)."""
    buf = io.BytesIO()
    PIL.Image.fromarray(pixels, mode="RGB").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _check_args(n: int, seed: int, image_size: int, difficulty: float, split: str, index_offset: int) -> None:
    """Validate :func:`make_synthetic` arguments; raise :class:`ValueError` naming the argument."""
    for name, val in (("n", n), ("seed", seed), ("image_size", image_size), ("index_offset", index_offset)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 0:
            raise ValueError(f"make_synthetic: {name} must be a non-negative int, got {val!r}")
    if not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE:
        raise ValueError(f"make_synthetic: image_size must be in {MIN_IMAGE_SIZE}..{MAX_IMAGE_SIZE}, got {image_size}")
    if not isinstance(difficulty, (int, float)) or not 0.0 <= float(difficulty) <= 1.0:
        raise ValueError(f"make_synthetic: difficulty must be in [0, 1], got {difficulty!r}")
    if not isinstance(split, str) or not split or any(c in split for c in "/?&=#"):
        raise ValueError(f"make_synthetic: split must be a non-empty name without / ? & = #, got {split!r}")


def _plan(seed: int, split: str, index: int, specs: tuple[str, ...]) -> tuple[str, str, str]:
    """(specialty, question_type, value) of item ``index``, balanced in blocks.

    Specialties: each consecutive block of ``len(specs)`` indices holds each once (seeded
    order). Question types: each specialty's 8 consecutive occurrences hold the types of
    :data:`TYPE_SLOTS` once each (seeded order: size 4, count 2, presence 1, side 1).
    Answers: each (specialty, type)'s ``len(values)`` consecutive occurrences hold every
    value of :data:`QUESTION_VALUES` once (seeded order). So every prefix is balanced up to
    one block.
    """
    k = len(specs)
    r, pos = divmod(index, k)
    s = _perm(seed, split, (10, r), k)[pos]
    spec = specs[s]
    s_code = SPECIALTIES.index(spec)
    n_slots = len(TYPE_SLOTS)
    g, qpos = divmod(r, n_slots)
    slots = [TYPE_SLOTS[i] for i in _perm(seed, split, (11, s_code, g), n_slots)]
    qt = slots[qpos]
    q_code = SYNTHETIC_QUESTION_TYPES.index(qt)
    j = g * TYPE_SLOTS.count(qt) + slots[:qpos].count(qt)  # occurrence of (spec, qt)
    values = QUESTION_VALUES[qt]
    h, apos = divmod(j, len(values))
    return spec, qt, values[_perm(seed, split, (12, s_code, q_code, h), len(values))[apos]]


def _question(mod: SyntheticModality, ref: SyntheticRef) -> tuple[str, list[str]]:
    """Question text and options for ``ref``; options are :data:`QUESTION_VALUES` in order."""
    qt = ref.question_type
    options = list(QUESTION_VALUES[qt])
    if qt == "presence":
        return f"Is there a {mod.finding} {mod.where}?", options
    if qt == "count":
        return f"How many {mod.findings} are visible {mod.where}?", options
    if qt == "side":
        return f"Is the {mod.finding} on the left or the right side of the image?", options
    return f"How large is the {mod.finding}?", options


def synthetic_item(ref: SyntheticRef | str) -> Item:
    """The full :class:`~mmed.data.schema.Item` of one synthetic reference (image as PNG bytes).

    ``meta``: ``question_type``, ``feature`` (the drawn value plus :func:`render`'s
    feature dict), ``difficulty``, ``seed``, ``index``, ``generator`` (``"mmed.synthetic
    v1"``). ``id`` is ``synthetic/<split>/<seed>/<index>``.
    """
    if isinstance(ref, str):
        ref = parse_ref(ref)
    mod = SYNTHETIC_MODALITIES[ref.modality]
    pixels, feature = render(ref)
    question, options = _question(mod, ref)
    answer_idx = options.index(ref.value)
    meta = {
        "question_type": ref.question_type,
        "feature": {"value": ref.value, **feature},
        "difficulty": float(ref.difficulty),
        "seed": ref.seed,
        "index": ref.index,
        "generator": f"mmed.synthetic v{SYNTHETIC_VERSION}",
    }
    return Item(
        id=f"synthetic/{ref.split}/{ref.seed}/{ref.index}",
        dataset="synthetic",
        split=ref.split,
        images=[{"bytes": _png(pixels), "path": None}],
        image_ref=str(ref),
        question=question,
        options=options,
        answer_idx=answer_idx,
        answer=ref.value,
        answer_type="closed",
        modality=mod.name,
        specialty=mod.specialty,
        organ=mod.organ,
        meta=meta,
    )


def make_synthetic(
    n: int,
    seed: int,
    *,
    image_size: int = 96,
    difficulty: float = 0.5,
    split: str = "train",
    specialties: Sequence[str] = SPECIALTIES,
    index_offset: int = 0,
    workers: int | None = None,
) -> datasets.Dataset:
    """``n`` procedural synthetic items as a :class:`datasets.Dataset` with the schema's columns.

    Args:
        n: number of items (>= 0).
        seed: non-negative int; with ``split`` and the item index it keys each item's stream.
        image_size: pixels per side, 64..112 (images are square RGB PNGs).
        difficulty: 0 (high contrast, little noise) .. 1 (faint, noisy); see
            :func:`contrast_of` and :func:`noise_of`.
        split: the items' ``split``; part of the random key, so ``"train"`` and ``"test"``
            with one seed are disjoint sets of images.
        specialties: which specialties to draw (each has one modality), balanced
            round-robin; any non-empty subset of :data:`SPECIALTIES` without repeats.
        index_offset: items get indices ``index_offset .. index_offset + n - 1`` (another
            way to make disjoint sets within one split and seed).
        workers: processes that draw the items, this one included (the others: a
            ``concurrent.futures.ProcessPoolExecutor``, ``spawn`` start method); 1 draws
            here only; None (default) uses the usable cores when each gets at least
            :data:`MIN_ITEMS_PER_WORKER` items, and 1 when called from a worker process.
            Every item has its own random stream, so the items are identical whatever
            the number of workers (tests/test_synthetic_identity.py). As with any
            ``spawn`` process, a script that calls this with more than one process must
            keep its own work under ``if __name__ == "__main__":`` (the worker imports
            the script; ``python -m mmed`` and notebooks need nothing).
    Returns:
        Items in index order, all closed questions (see the module docstring).
    Raises:
        ValueError: naming the bad argument (negative ``n``, ``image_size`` outside
            64..112, ``difficulty`` outside [0, 1], an unknown or repeated specialty,
            ``workers`` < 1, ...).

    Source: the schema of docs/architecture.md#item-schema.
    """
    _check_args(n, seed, image_size, difficulty, split, index_offset)
    specs = tuple(specialties)
    unknown = [s for s in specs if s not in SPECIALTIES]
    if not specs or unknown or len(set(specs)) != len(specs):
        raise ValueError(f"make_synthetic: specialties must be a non-empty subset of {SPECIALTIES} "
                         f"without repeats; got {list(specs)} (unknown: {unknown})")
    procs = _n_workers(workers, n)
    refs = []
    for index in range(index_offset, index_offset + n):
        spec, qt, value = _plan(seed, split, index, specs)
        refs.append(SyntheticRef(MODALITY_OF_SPECIALTY[spec], qt, value, int(seed), split, index, int(image_size),
                                 float(difficulty)))
    rows = _draw_rows(refs) if procs == 1 else _draw_in_processes(refs, procs)
    # as mmed.data.schema.items_to_dataset builds it (the rows are validated items; their ids,
    # synthetic/<split>/<seed>/<index>, are distinct)
    return datasets.Dataset.from_dict({k: [row[k] for row in rows] for k in COLUMNS}, features=FEATURES)


#: with ``workers=None``, each drawing process must have at least this many items: starting
#: a worker process (``spawn``: a fresh interpreter importing this package) costs about a
#: second of one core, the drawing of ~230 items (2 cores, idle: 500 items take 1.6 s with
#: two processes, 2.0 s with one; benchmarks/RESULTS.md)
MIN_ITEMS_PER_WORKER: int = 250
#: items per chunk handed to a process (small enough to even out the processes' loads)
_CHUNK_ITEMS = 20


def _draw_in_processes(refs: Sequence[SyntheticRef], procs: int) -> list[dict]:
    """:func:`_draw_rows` of ``refs`` by this process and ``procs - 1`` worker processes.

    The refs are cut into contiguous chunks of :data:`_CHUNK_ITEMS`, all submitted to a
    ``concurrent.futures.ProcessPoolExecutor`` (``spawn`` start method, as
    :func:`mmed.eval.replicates.train_curricula`); meanwhile this process draws, from the
    front, every chunk that no worker has taken yet (``Future.cancel`` succeeds only for
    those), so it works while the workers start. Rows come back in ``refs`` order. A
    worker's error is raised here. The idle workers are left to exit on their own.
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    chunks = [refs[i:i + _CHUNK_ITEMS] for i in range(0, len(refs), _CHUNK_ITEMS)]
    done: dict[int, list[dict]] = {}
    pool = ProcessPoolExecutor(max_workers=procs - 1, mp_context=get_context("spawn"))
    try:
        futures = [pool.submit(_draw_rows, c) for c in chunks]
        for i, fut in enumerate(futures):
            if fut.cancel():  # still queued: draw it here
                done[i] = _draw_rows(chunks[i])
        for i, fut in enumerate(futures):
            if i not in done:
                done[i] = fut.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return [row for i in range(len(chunks)) for row in done[i]]


def _n_workers(workers: int | None, n: int) -> int:
    """Processes that draw for :func:`make_synthetic` (this one included): ``workers``
    (capped at ``n``), or with None the usable cores, capped so that each draws >=
    :data:`MIN_ITEMS_PER_WORKER` items; 1 inside a worker process (the parallel trainings
    of :mod:`mmed.eval.replicates` already use the cores) and in a program read from standard
    input (:func:`mmed.processes.can_spawn_workers`).

    Raises:
        ValueError: ``workers`` is not an int >= 1 (or None).
    """
    import multiprocessing
    import os

    if workers is not None:
        if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
            raise ValueError(f"make_synthetic: workers must be an int >= 1 or None, got {workers!r}")
        return max(1, min(int(workers), n))
    if multiprocessing.parent_process() is not None or not can_spawn_workers():
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, n // MIN_ITEMS_PER_WORKER))


def _draw_rows(refs: Sequence[SyntheticRef]) -> list[dict]:
    """The dataset rows (:meth:`~mmed.data.schema.Item.to_row`) of the validated
    :func:`synthetic_item` of each ref, in order (one chunk of a drawing process)."""
    return [synthetic_item(r).validate().to_row() for r in refs]

