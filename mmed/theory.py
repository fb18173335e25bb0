"""Theorem 4.1 of MMedAgent-RL (arXiv 2506.00555 v3), checked numerically — pure numpy.

The paper's Theorem 4.1 argues that the cost of a curriculum grows with
``Σ_j log‖θ*_{j-1} − θ*_j‖²``, the log squared distances between the optima of adjacent
stages. Nobody on this project can read the paper; what this module tests is our
**reconstruction** of the statement:

    Stages j = 1..J have losses f_j, each μ_j-strongly convex and L_j-smooth, with
    minimiser θ*_j (κ_j = L_j / μ_j). Write θ*_0 := θ0 and d_j := ‖θ*_{j-1} − θ*_j‖.
    Gradient descent with step 1/L_j on f_j contracts the squared distance to θ*_j by
    (1 − 1/κ_j) per step (Nesterov 2004, Thm 2.1.15), so from a start at distance e it
    reaches ‖θ − θ*_j‖² ≤ ε after at most ⌈κ_j log(e² / ε)⌉ steps. A curriculum runs
    stage j until that tolerance and warm-starts stage j+1 from there, so stage j starts
    within d_j + √ε of θ*_j (exactly d_1 for the first stage) and the whole curriculum
    costs at most

        T_curriculum ≤ Σ_j ⌈κ_j log((d_j + r_j)² / ε)⌉,   r_1 = 0, r_j = √ε (j ≥ 2),

    i.e. ``Σ_j κ_j log d_j²`` plus constants; direct training on the last stage costs at
    most ⌈κ_J log(‖θ0 − θ*_J‖² / ε)⌉. With SGD (gradient noise of variance σ² per
    coordinate) the error stalls at a noise floor (:func:`sgd_noise_floor`); the bound only
    makes sense for ε above it.

What the module provides:

- stage problems whose optima move along a path: strongly convex quadratics
  (:class:`QuadraticStage`), L2-regularised logistic regression with soft labels
  (:class:`LogisticStage`) and, to break convexity, a tilted double well
  (:class:`DoubleWellStage`);
- paths of optima (:func:`make_path`: straight or bent, uniform or uneven spacing, with an
  optional overshoot that makes the path non-monotone — a detour);
- GD/SGD with and without a curriculum (:func:`run_curriculum`, :func:`run_direct`),
  a same-total-budget comparison (:func:`budget_comparison`), the bound
  (:func:`curriculum_bound`) and sweeps over path geometry (:func:`sweep`);
- SGD with and without a curriculum over seeds: noise calibrated from the floor formula
  (:func:`noise_std_for_floor`, :func:`calibrate_noise`, :func:`stage_noise_floors`), one
  problem (:func:`sgd_measure`), sweeps (:func:`sgd_sweep`) and their summaries — the
  measured cost against Σ_j log(d_j²/ε) with a slope per seed (:func:`sgd_slope_summary`)
  and curriculum minus direct per case (:func:`sgd_case_summary`);
- the places where the assumptions stop holding: :func:`sgd_noise_floor` above ε
  (:func:`noise_floor_experiment`), step sizes beyond 2/L (:func:`step_size_experiment`),
  non-convex stages (:func:`double_well_experiment`).

Everything is seeded and deterministic; nothing here imports torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Protocol, Sequence

import numpy as np

#: ``spacing`` values accepted by :func:`make_path`.
SPACINGS: tuple[str, ...] = ("uniform", "front", "back")
#: ``family`` values accepted by :class:`PathConfig`.
FAMILIES: tuple[str, ...] = ("quadratic", "logistic")
#: Squared gradient norm below which deterministic GD is declared stalled (a stationary
#: point that is not the target: only possible without convexity).
STALL_TOL: float = 1e-24
#: Mean squared error growth (relative to the start) that declares divergence.
DIVERGE_FACTOR: float = 1e8


# ----------------------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------------------
def _vector(x: Any, name: str, dim: int | None = None) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D vector, got shape {a.shape}")
    if dim is not None and a.shape[0] != dim:
        raise ValueError(f"{name} has dimension {a.shape[0]}, expected {dim}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains non-finite values")
    return a


def _positive(x: float, name: str) -> float:
    if not isinstance(x, (int, float, np.floating, np.integer)) or not math.isfinite(x) or x <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {x!r}")
    return float(x)


# ----------------------------------------------------------------------------------------
# stage problems
# ----------------------------------------------------------------------------------------
class Stage(Protocol):
    """One curriculum stage: a loss with gradient, its minimiser and curvature bounds.

    ``grad`` accepts θ of shape ``(d,)`` or a batch of independent chains ``(R, d)`` and
    returns the same shape.
    """

    opt: np.ndarray

    @property
    def mu(self) -> float: ...

    @property
    def L(self) -> float: ...

    def loss(self, theta: np.ndarray) -> np.ndarray | float: ...

    def grad(self, theta: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class QuadraticStage:
    """f(θ) = ½ (θ − θ*)ᵀ H (θ − θ*): μ-strongly convex and L-smooth with μ, L the extreme
    eigenvalues of H — the cleanest case of the reconstructed Theorem 4.1.

    Args:
        hessian: ``(d, d)`` symmetric positive-definite matrix H.
        opt: ``(d,)`` minimiser θ*.
    Raises:
        ValueError: H not square/symmetric/positive definite, or shapes that disagree.
    """

    hessian: np.ndarray
    opt: np.ndarray
    eigenvalues: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        h = np.asarray(self.hessian, dtype=float)
        if h.ndim != 2 or h.shape[0] != h.shape[1]:
            raise ValueError(f"hessian must be a square matrix, got shape {h.shape}")
        if not np.allclose(h, h.T, atol=1e-10 * max(1.0, float(np.abs(h).max()))):
            raise ValueError("hessian must be symmetric")
        opt = _vector(self.opt, "opt", h.shape[0])
        eig = np.linalg.eigvalsh(h)
        if eig[0] <= 0:
            raise ValueError(f"hessian must be positive definite (smallest eigenvalue {eig[0]:.3g})")
        object.__setattr__(self, "hessian", h)
        object.__setattr__(self, "opt", opt)
        object.__setattr__(self, "eigenvalues", eig)

    @property
    def mu(self) -> float:
        """Strong-convexity constant: the smallest eigenvalue of H."""
        return float(self.eigenvalues[0])

    @property
    def L(self) -> float:
        """Smoothness constant: the largest eigenvalue of H."""
        return float(self.eigenvalues[-1])

    def loss(self, theta: np.ndarray) -> np.ndarray | float:
        """f(θ) for θ of shape ``(d,)`` (a float) or ``(R, d)`` (shape ``(R,)``)."""
        e = np.asarray(theta, dtype=float) - self.opt
        return 0.5 * np.sum((e @ self.hessian) * e, axis=-1)

    def grad(self, theta: np.ndarray) -> np.ndarray:
        """∇f(θ) = H (θ − θ*), same shape as θ."""
        return (np.asarray(theta, dtype=float) - self.opt) @ self.hessian


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


@dataclass(frozen=True)
class LogisticStage:
    """L2-regularised logistic regression with soft labels:
    f(θ) = (1/n) Σ_i [log(1 + exp(x_iᵀθ)) − y_i x_iᵀθ] + (λ/2)‖θ‖².

    μ = λ and L = λ + σ_max(X)² / (4n) (the logistic loss has curvature ≤ 1/4), so it
    satisfies the reconstructed Theorem 4.1's assumptions without being quadratic. The
    minimiser is found by Newton's method at construction (gradient norm ≤ 1e-12).

    Args:
        X: ``(n, d)`` design matrix.
        y: ``(n,)`` targets in [0, 1] (soft labels, e.g. σ(X w) for a teacher w).
        lam: λ > 0.
    Raises:
        ValueError: bad shapes, y outside [0, 1], λ ≤ 0, or Newton not converging.
    """

    X: np.ndarray
    y: np.ndarray
    lam: float
    opt: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        X = np.asarray(self.X, dtype=float)
        if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"X must be a non-empty (n, d) matrix, got shape {X.shape}")
        y = _vector(self.y, "y", X.shape[0])
        if np.any((y < 0) | (y > 1)):
            raise ValueError("y must lie in [0, 1]")
        lam = _positive(self.lam, "lam")
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "lam", lam)
        object.__setattr__(self, "opt", self._newton())

    def _newton(self, tol: float = 1e-12, max_iter: int = 100) -> np.ndarray:
        n, d = self.X.shape
        theta = np.zeros(d)
        for _ in range(max_iter):
            g = self.grad(theta)
            if np.linalg.norm(g) <= tol:
                return theta
            p = _sigmoid(self.X @ theta)
            h = (self.X.T * (p * (1 - p))) @ self.X / n + self.lam * np.eye(d)
            step = np.linalg.solve(h, g)
            # damped Newton: halve the step until the loss does not increase
            t, f0 = 1.0, self.loss(theta)
            while self.loss(theta - t * step) > f0 + 1e-15 and t > 1e-8:
                t *= 0.5
            theta = theta - t * step
        raise ValueError("Newton's method did not converge for the logistic stage")

    @property
    def mu(self) -> float:
        """Strong-convexity constant λ."""
        return self.lam

    @property
    def L(self) -> float:
        """Smoothness constant λ + σ_max(X)² / (4n)."""
        n = self.X.shape[0]
        return self.lam + float(np.linalg.norm(self.X, 2) ** 2) / (4 * n)

    def loss(self, theta: np.ndarray) -> np.ndarray | float:
        """f(θ) for θ of shape ``(d,)`` or ``(R, d)``."""
        th = np.asarray(theta, dtype=float)
        z = th @ self.X.T
        return np.mean(np.logaddexp(0.0, z) - self.y * z, axis=-1) + 0.5 * self.lam * np.sum(th * th, axis=-1)

    def grad(self, theta: np.ndarray) -> np.ndarray:
        """∇f(θ) = Xᵀ(σ(Xθ) − y)/n + λθ, same shape as θ."""
        th = np.asarray(theta, dtype=float)
        r = _sigmoid(th @ self.X.T) - self.y
        return r @ self.X / self.X.shape[0] + self.lam * th


@dataclass(frozen=True)
class DoubleWellStage:
    """A non-convex stage: f(θ) = ¼(θ₀² − 1)² − c·θ₀ + ½ Σ_{i≥1} θ_i² (tilt c).

    For |c| < 2/(3√3) ≈ 0.385 the first coordinate has two wells (near ±1); the deeper one
    is on the side of sign(c), and :attr:`opt` is that global minimiser. Above the
    threshold there is a single well. Where the reconstructed Theorem 4.1 would need
    μ > 0 everywhere, here f'' = 3θ₀² − 1 < 0 for |θ₀| < 1/√3.

    Args:
        tilt: c (any finite float).
        dim: d ≥ 1.
    Raises:
        ValueError: non-finite tilt or dim < 1.
    """

    tilt: float
    dim: int = 2
    opt: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        if not math.isfinite(self.tilt):
            raise ValueError(f"tilt must be finite, got {self.tilt!r}")
        if not isinstance(self.dim, (int, np.integer)) or self.dim < 1:
            raise ValueError(f"dim must be an integer >= 1, got {self.dim!r}")
        mins = self.minima()
        f = [0.25 * (x * x - 1) ** 2 - self.tilt * x for x in mins]
        opt = np.zeros(self.dim)
        opt[0] = mins[int(np.argmin(f))]
        object.__setattr__(self, "opt", opt)

    def minima(self) -> list[float]:
        """First coordinates of the local minima: real roots of x³ − x − c with 3x² − 1 > 0."""
        roots = np.roots([1.0, 0.0, -1.0, -self.tilt])
        real = sorted(float(r.real) for r in roots if abs(r.imag) < 1e-9)
        return [x for x in real if 3 * x * x - 1 > 0]

    @property
    def mu(self) -> float:
        """Local curvature at the global minimum, 3x*² − 1 (not a global constant)."""
        return float(min(3 * self.opt[0] ** 2 - 1, 1.0))

    @property
    def L(self) -> float:
        """Curvature bound on the box |θ₀| ≤ 2 (3·4 − 1 = 11); not global."""
        return 11.0

    def loss(self, theta: np.ndarray) -> np.ndarray | float:
        """f(θ) for θ of shape ``(d,)`` or ``(R, d)``."""
        th = np.asarray(theta, dtype=float)
        x = th[..., 0]
        return 0.25 * (x * x - 1) ** 2 - self.tilt * x + 0.5 * np.sum(th[..., 1:] ** 2, axis=-1)

    def grad(self, theta: np.ndarray) -> np.ndarray:
        """∇f(θ): (θ₀³ − θ₀ − c, θ₁, ..., θ_{d−1}), same shape as θ."""
        g = np.array(theta, dtype=float, copy=True)
        x = g[..., 0].copy()
        g[..., 0] = x**3 - x - self.tilt
        return g


# ----------------------------------------------------------------------------------------
# paths and stage families
# ----------------------------------------------------------------------------------------
def random_rotation(dim: int, seed: int = 0) -> np.ndarray:
    """A ``(dim, dim)`` orthogonal matrix drawn uniformly (QR of a Gaussian, signs fixed)."""
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))


def path_positions(n_stages: int, spacing: str = "uniform", ratio: float = 0.5) -> np.ndarray:
    """Fractions s_1 < ... < s_J = 1 of the way from θ0 to the target at each stage.

    Args:
        n_stages: J ≥ 1.
        spacing: ``"uniform"`` (equal hops), ``"front"`` (hops shrink by ``ratio`` each
            stage: the easy stages cover most of the way) or ``"back"`` (hops grow).
        ratio: geometric ratio in (0, 1) for the uneven spacings.
    Returns:
        ``(J,)`` array, strictly increasing, last entry exactly 1.
    Raises:
        ValueError: J < 1, unknown spacing, ratio outside (0, 1).
    """
    if not isinstance(n_stages, (int, np.integer)) or n_stages < 1:
        raise ValueError(f"n_stages must be an integer >= 1, got {n_stages!r}")
    if spacing not in SPACINGS:
        raise ValueError(f"unknown spacing {spacing!r}; accepted: {SPACINGS}")
    if not 0 < ratio < 1:
        raise ValueError(f"ratio must be in (0, 1), got {ratio}")
    hops = np.ones(n_stages) if spacing == "uniform" else ratio ** np.arange(n_stages)
    if spacing == "back":
        hops = hops[::-1]
    s = np.cumsum(hops) / hops.sum()
    s[-1] = 1.0
    return s


def make_path(
    theta0: np.ndarray,
    target: np.ndarray,
    n_stages: int,
    *,
    spacing: str = "uniform",
    bend: float = 0.0,
    overshoot: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """Stage optima θ*_1..θ*_J on a path from θ0 to the target (θ*_J = target exactly).

    θ*_j = θ0 + s_j Δ + bend·‖Δ‖·sin(π s_j)·u, with Δ = target − θ0, s_j from
    :func:`path_positions` and u a unit vector ⟂ Δ (seeded). With ``overshoot`` o > 0 the
    first J − 1 positions are stretched to end at s = 1 + o (the path passes the target
    and comes back for the last stage): a detour, not monotone toward the target.

    Args:
        theta0, target: ``(d,)`` start and final optimum, distinct.
        n_stages: J ≥ 1 (overshoot needs J ≥ 2).
        spacing: see :func:`path_positions`.
        bend: sideways amplitude relative to ‖Δ‖ (0 = straight; ≳ 1 = a sideways detour).
        overshoot: o ≥ 0.
        seed: picks u.
    Returns:
        ``(J, d)`` array of optima.
    Raises:
        ValueError: bad shapes, θ0 = target, bend with d = 1, negative overshoot, or an
        overshoot with J = 1.
    """
    theta0 = _vector(theta0, "theta0")
    target = _vector(target, "target", theta0.shape[0])
    delta = target - theta0
    dist = float(np.linalg.norm(delta))
    if dist == 0:
        raise ValueError("theta0 and target coincide")
    if not math.isfinite(bend) or not math.isfinite(overshoot) or overshoot < 0:
        raise ValueError(f"bend must be finite and overshoot >= 0, got {bend}, {overshoot}")
    if overshoot > 0 and n_stages < 2:
        raise ValueError("an overshoot needs at least 2 stages")
    if bend != 0 and theta0.shape[0] < 2:
        raise ValueError("a bent path needs dimension >= 2")
    if overshoot > 0:
        s = np.append(path_positions(n_stages - 1, spacing) * (1.0 + overshoot), 1.0)
    else:
        s = path_positions(n_stages, spacing)
    u = np.zeros_like(theta0)
    if bend != 0:
        rng = np.random.default_rng(seed)
        v = rng.standard_normal(theta0.shape[0])
        v -= (v @ delta) / dist**2 * delta
        u = v / np.linalg.norm(v)
    path = theta0 + s[:, None] * delta + bend * dist * np.sin(np.pi * s)[:, None] * u
    path[-1] = target
    return path


def is_monotone(theta0: np.ndarray, optima: np.ndarray) -> bool:
    """True when every stage optimum is strictly closer to the final one than the previous
    (θ*_0 := θ0): the path moves monotonically toward the target."""
    optima = np.asarray(optima, dtype=float)
    pts = np.vstack([_vector(theta0, "theta0", optima.shape[1]), optima])
    d = np.linalg.norm(pts - optima[-1], axis=1)
    return bool(np.all(np.diff(d) < 0))


def kappa_schedule(n_stages: int, kappa_first: float, kappa_last: float) -> np.ndarray:
    """Condition numbers κ_1..κ_J, geometric from ``kappa_first`` to ``kappa_last``.

    Raises:
        ValueError: J < 1 or a κ < 1.
    """
    if n_stages < 1:
        raise ValueError(f"n_stages must be >= 1, got {n_stages}")
    if not (kappa_first >= 1 and kappa_last >= 1):
        raise ValueError(f"condition numbers must be >= 1, got {kappa_first}, {kappa_last}")
    if n_stages == 1:
        return np.array([float(kappa_last)])
    return np.geomspace(kappa_first, kappa_last, n_stages)


def quadratic_stages(optima: np.ndarray, kappas: Sequence[float], seed: int = 0) -> list[QuadraticStage]:
    """Quadratic stages with the given optima: H_j = Q diag(λ_j) Qᵀ, λ_j log-spaced in
    [1, κ_j] (so μ_j = 1, L_j = κ_j), one random rotation Q shared by all stages.

    Args:
        optima: ``(J, d)``; kappas: ``(J,)`` values ≥ 1.
    Raises:
        ValueError: shapes disagree or a κ < 1.
    """
    optima = np.asarray(optima, dtype=float)
    kappas = np.asarray(kappas, dtype=float)
    if optima.ndim != 2 or kappas.shape != (optima.shape[0],):
        raise ValueError(f"need optima (J, d) and kappas (J,), got {optima.shape} and {kappas.shape}")
    if np.any(kappas < 1):
        raise ValueError("condition numbers must be >= 1")
    d = optima.shape[1]
    q = random_rotation(d, seed)
    out = []
    for opt, k in zip(optima, kappas):
        lam = np.geomspace(1.0, k, d) if d > 1 else np.array([1.0])
        out.append(QuadraticStage(hessian=(q * lam) @ q.T, opt=opt))
    return out


def logistic_stages(
    teachers: np.ndarray, kappas: Sequence[float], n_samples: int = 200, seed: int = 0
) -> list[LogisticStage]:
    """Logistic stages: shared Gaussian design X ``(n, d)``, soft labels y = σ(X w_j) from
    teacher w_j, and λ_j chosen so that L_j/μ_j = κ_j (λ = σ_max(X)² / (4n(κ − 1))).

    The optimum of stage j is w_j shrunk by the regulariser, so the optima follow the
    teachers' path. ``teachers``: ``(J, d)``; ``kappas``: ``(J,)`` values > 1.

    Raises:
        ValueError: shapes disagree or a κ ≤ 1.
    """
    teachers = np.asarray(teachers, dtype=float)
    kappas = np.asarray(kappas, dtype=float)
    if teachers.ndim != 2 or kappas.shape != (teachers.shape[0],):
        raise ValueError(f"need teachers (J, d) and kappas (J,), got {teachers.shape} and {kappas.shape}")
    if np.any(kappas <= 1):
        raise ValueError("logistic stages need condition numbers > 1")
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, teachers.shape[1]))
    curv = float(np.linalg.norm(X, 2) ** 2) / (4 * n_samples)
    return [LogisticStage(X=X, y=_sigmoid(X @ w), lam=curv / (k - 1)) for w, k in zip(teachers, kappas)]


# ----------------------------------------------------------------------------------------
# the bound
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CurriculumBound:
    """The reconstructed Theorem 4.1 bound for one curriculum.

    Attributes:
        hops: ``(J,)`` d_j = ‖θ*_{j-1} − θ*_j‖ with θ*_0 = θ0.
        log_sum: the theorem's quantity Σ_j log d_j² (hops below √ε clipped to √ε: they
            cost nothing).
        stage_steps: ``(J,)`` ⌈κ_j log((d_j + r_j)²/ε)⌉ (0 when that start is already
            within ε), r_1 = 0, r_j = √ε.
        total: Σ stage_steps — the bound on GD steps with step 1/L_j.
    """

    hops: np.ndarray
    log_sum: float
    stage_steps: np.ndarray
    total: int


def gd_steps_bound(start_dist: float, kappa: float, eps: float) -> int:
    """⌈κ log(e²/ε)⌉: GD steps (step 1/L) that suffice to bring the squared distance from
    e² to ≤ ε for a μ-strongly convex, L-smooth loss (contraction 1 − 1/κ per step,
    Nesterov 2004 Thm 2.1.15); 0 when e² ≤ ε.

    Raises:
        ValueError: e < 0, κ < 1 or ε ≤ 0.
    """
    if start_dist < 0 or not math.isfinite(start_dist):
        raise ValueError(f"start_dist must be a finite number >= 0, got {start_dist}")
    if not kappa >= 1:
        raise ValueError(f"kappa must be >= 1, got {kappa}")
    _positive(eps, "eps")
    if start_dist**2 <= eps:
        return 0
    return int(math.ceil(kappa * math.log(start_dist**2 / eps)))


def curriculum_bound(theta0: np.ndarray, optima: np.ndarray, kappas: Sequence[float], eps: float) -> CurriculumBound:
    """The bound of the reconstructed Theorem 4.1 (see the module docstring) for stage
    optima ``(J, d)``, condition numbers ``(J,)`` and tolerance ε on ‖θ − θ*_j‖².

    With J = 1 this is the direct-training bound ⌈κ log(‖θ0 − θ*‖²/ε)⌉.

    Raises:
        ValueError: shapes disagree, κ < 1 or ε ≤ 0.
    """
    optima = np.asarray(optima, dtype=float)
    kappas = np.asarray(kappas, dtype=float)
    if optima.ndim != 2 or kappas.shape != (optima.shape[0],):
        raise ValueError(f"need optima (J, d) and kappas (J,), got {optima.shape} and {kappas.shape}")
    eps = _positive(eps, "eps")
    pts = np.vstack([_vector(theta0, "theta0", optima.shape[1]), optima])
    hops = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    slack = np.full(len(hops), math.sqrt(eps))
    slack[0] = 0.0
    steps = np.array([gd_steps_bound(h + r, k, eps) for h, r, k in zip(hops, slack, kappas)], dtype=int)
    log_sum = float(np.sum(np.log(np.maximum(hops**2, eps))))
    return CurriculumBound(hops=hops, log_sum=log_sum, stage_steps=steps, total=int(steps.sum()))


def stage_kappas(stages: Sequence[Stage]) -> np.ndarray:
    """``(J,)`` condition numbers L_j / μ_j of the stages."""
    return np.array([s.L / s.mu for s in stages], dtype=float)


def sgd_noise_floor(eigenvalues: Sequence[float], lr: float, noise_std: float) -> float:
    """Stationary E‖θ − θ*‖² of SGD on a quadratic with Hessian eigenvalues λ_i, step η and
    isotropic gradient noise of standard deviation σ per coordinate:
    Σ_i η σ² / (λ_i (2 − η λ_i)) (each eigen-coordinate is an AR(1) process
    e ← (1 − ηλ)e − ησξ). For ε below this floor, SGD with a constant step never
    reaches ε on average, and the bound's premise fails.

    Raises:
        ValueError: η ≤ 0, σ < 0, a λ ≤ 0 or η λ_i ≥ 2 (no stationary distribution).
    """
    lam = np.asarray(eigenvalues, dtype=float)
    lr = _positive(lr, "lr")
    if noise_std < 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std}")
    if lam.size == 0 or np.any(lam <= 0):
        raise ValueError("eigenvalues must be > 0")
    if np.any(lr * lam >= 2):
        raise ValueError(f"lr = {lr} >= 2/L: SGD has no stationary distribution")
    return float(np.sum(lr * noise_std**2 / (lam * (2 - lr * lam))))


# ----------------------------------------------------------------------------------------
# descent with and without a curriculum
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Descent:
    """Result of :func:`descend`.

    Attributes:
        theta: final iterate, ``(d,)`` or ``(R, d)`` for R chains.
        steps: gradient steps taken.
        status: ``"reached"`` (mean over chains of ‖θ − θ*‖² ≤ ε), ``"max_steps"``,
            ``"diverged"`` (non-finite or grown by :data:`DIVERGE_FACTOR`) or ``"stalled"``
            (deterministic GD at a stationary point that is not the target).
        iterates: ``(steps + 1, ...)`` array of all iterates when ``record=True``, else None.
    """

    theta: np.ndarray
    steps: int
    status: str
    iterates: np.ndarray | None = None

    @property
    def reached(self) -> bool:
        """Whether the tolerance was met."""
        return self.status == "reached"


def mean_sq_dist(theta: np.ndarray, point: np.ndarray) -> float:
    """‖θ − p‖² for θ ``(d,)``, or its mean over chains for θ ``(R, d)``."""
    e = np.asarray(theta, dtype=float) - np.asarray(point, dtype=float)
    return float(np.mean(np.sum(e * e, axis=-1)))


def descend(
    stage: Stage,
    start: np.ndarray,
    eps: float,
    *,
    lr: float | None = None,
    max_steps: int = 100_000,
    noise_std: float = 0.0,
    rng: np.random.Generator | None = None,
    record: bool = False,
) -> Descent:
    """(S)GD on one stage from ``start`` until the mean squared distance to ``stage.opt``
    is ≤ ε; the step count is the stage's cost in the reconstructed Theorem 4.1.

    Args:
        stage: any :class:`Stage`.
        start: ``(d,)``, or ``(R, d)`` for R independent SGD chains (ε then applies to the
            mean over chains, an estimate of E‖θ − θ*‖²).
        eps: tolerance ε > 0 on the squared distance.
        lr: step size; None → 1/L (the theorem's step).
        max_steps: cap on steps (≥ 0).
        noise_std: σ ≥ 0 of Gaussian noise added to every gradient coordinate (SGD).
        rng: generator for the noise (required when σ > 0).
        record: keep every iterate.
    Returns:
        a :class:`Descent`.
    Raises:
        ValueError: ε ≤ 0, lr ≤ 0, max_steps < 0, σ < 0, σ > 0 without rng, bad shapes.
    """
    eps = _positive(eps, "eps")
    lr = 1.0 / stage.L if lr is None else _positive(lr, "lr")
    if max_steps < 0:
        raise ValueError(f"max_steps must be >= 0, got {max_steps}")
    if noise_std < 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std}")
    if noise_std > 0 and rng is None:
        raise ValueError("SGD (noise_std > 0) needs an rng")
    theta = np.array(start, dtype=float, copy=True)
    if theta.ndim not in (1, 2) or theta.shape[-1] != stage.opt.shape[0]:
        raise ValueError(f"start must be (d,) or (R, d) with d = {stage.opt.shape[0]}, got {theta.shape}")
    opt = stage.opt
    trace = [theta.copy()] if record else None
    err0 = max(mean_sq_dist(theta, opt), eps)
    status = "max_steps"
    t = 0
    while True:
        err = mean_sq_dist(theta, opt)
        if err <= eps:
            status = "reached"
            break
        if not math.isfinite(err) or err > DIVERGE_FACTOR * err0:
            status = "diverged"
            break
        if t >= max_steps:
            break
        g = stage.grad(theta)
        if noise_std > 0:
            g = g + noise_std * rng.standard_normal(g.shape)
        elif float(np.sum(g * g)) < STALL_TOL:
            status = "stalled"
            break
        theta = theta - lr * g
        t += 1
        if record:
            trace.append(theta.copy())
    return Descent(theta=theta, steps=t, status=status, iterates=np.array(trace) if record else None)


def sgd_error_trace(
    stage: Stage,
    start: np.ndarray,
    *,
    lr: float,
    noise_std: float,
    n_steps: int,
    n_chains: int = 64,
    seed: int = 0,
) -> np.ndarray:
    """Run SGD for exactly ``n_steps`` steps (no stopping rule) on R = ``n_chains``
    independent chains started at ``start`` ``(d,)``; return the mean over chains of
    ‖θ_t − θ*‖², shape ``(n_steps + 1,)``. Its tail estimates the noise floor that
    :func:`sgd_noise_floor` predicts for quadratics.

    Raises:
        ValueError: lr ≤ 0, σ < 0, n_steps < 0, n_chains < 1 or a bad start.
    """
    lr = _positive(lr, "lr")
    if noise_std < 0 or n_steps < 0 or n_chains < 1:
        raise ValueError(f"need noise_std >= 0, n_steps >= 0, n_chains >= 1; got {noise_std}, {n_steps}, {n_chains}")
    theta = np.tile(_vector(start, "start", stage.opt.shape[0]), (n_chains, 1))
    rng = np.random.default_rng(seed)
    out = np.empty(n_steps + 1)
    out[0] = mean_sq_dist(theta, stage.opt)
    for t in range(1, n_steps + 1):
        g = stage.grad(theta) + noise_std * rng.standard_normal(theta.shape)
        theta = theta - lr * g
        out[t] = mean_sq_dist(theta, stage.opt)
    return out


@dataclass(frozen=True)
class CurriculumRun:
    """Result of :func:`run_curriculum`: one :class:`Descent` per stage actually run (a
    failed stage ends the curriculum)."""

    descents: tuple[Descent, ...]
    n_stages: int

    @property
    def stage_steps(self) -> list[int]:
        """Steps of each stage run."""
        return [d.steps for d in self.descents]

    @property
    def total_steps(self) -> int:
        """Σ stage steps."""
        return int(sum(self.stage_steps))

    @property
    def reached(self) -> bool:
        """True when every stage reached its tolerance."""
        return len(self.descents) == self.n_stages and all(d.reached for d in self.descents)

    @property
    def status(self) -> str:
        """``"reached"`` or the status of the stage that failed."""
        return "reached" if self.reached else self.descents[-1].status

    @property
    def theta(self) -> np.ndarray:
        """Final iterate."""
        return self.descents[-1].theta

    def iterates(self) -> np.ndarray:
        """All iterates of all stages, concatenated (needs ``record=True``)."""
        if any(d.iterates is None for d in self.descents):
            raise ValueError("run with record=True to keep iterates")
        parts = [self.descents[0].iterates] + [d.iterates[1:] for d in self.descents[1:]]
        return np.concatenate(parts)


def run_curriculum(
    stages: Sequence[Stage],
    theta0: np.ndarray,
    eps: float,
    *,
    lr_scale: float = 1.0,
    lr: float | None = None,
    max_steps_per_stage: int = 100_000,
    noise_std: float = 0.0,
    n_chains: int = 1,
    seed: int = 0,
    record: bool = False,
) -> CurriculumRun:
    """Stage-by-stage (S)GD with warm starts: stage j runs until ‖θ − θ*_j‖² ≤ ε, then
    stage j+1 starts from that θ (the curriculum of the reconstructed Theorem 4.1).

    Args:
        stages: J ≥ 1 stages, in order.
        theta0: ``(d,)`` start.
        eps: ε > 0.
        lr_scale: step = lr_scale / L_j per stage (1 = the theorem's 1/L; > 2 diverges on a
            quadratic). Ignored when ``lr`` is given.
        lr: a fixed step for every stage (for stages without a global L, e.g. the double well).
        max_steps_per_stage: cap per stage.
        noise_std: SGD gradient noise σ (0 = GD).
        n_chains: R ≥ 1 independent chains (useful with σ > 0).
        seed: seeds the SGD noise.
        record: keep iterates.
    Returns:
        a :class:`CurriculumRun` (stops at the first stage that fails).
    Raises:
        ValueError: no stages, lr_scale ≤ 0, n_chains < 1, or anything :func:`descend` rejects.
    """
    if len(stages) == 0:
        raise ValueError("need at least one stage")
    _positive(lr_scale, "lr_scale")
    if n_chains < 1:
        raise ValueError(f"n_chains must be >= 1, got {n_chains}")
    theta = _vector(theta0, "theta0", stages[0].opt.shape[0])
    if n_chains > 1:
        theta = np.tile(theta, (n_chains, 1))
    rng = np.random.default_rng(seed)
    out: list[Descent] = []
    for st in stages:
        step = lr if lr is not None else lr_scale / st.L
        d = descend(st, theta, eps, lr=step, max_steps=max_steps_per_stage, noise_std=noise_std, rng=rng, record=record)
        out.append(d)
        if not d.reached:
            break
        theta = d.theta
    return CurriculumRun(descents=tuple(out), n_stages=len(stages))


def run_direct(stages: Sequence[Stage], theta0: np.ndarray, eps: float, **kwargs: Any) -> CurriculumRun:
    """Direct training: (S)GD on the last stage only, from θ0 (same options as
    :func:`run_curriculum`)."""
    if len(stages) == 0:
        raise ValueError("need at least one stage")
    return run_curriculum(list(stages)[-1:], theta0, eps, **kwargs)


# ----------------------------------------------------------------------------------------
# same total budget
# ----------------------------------------------------------------------------------------
def split_budget(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` steps across stages in proportion to ``weights`` (largest remainder;
    the result sums to ``total``). All-zero weights → equal split.

    Raises:
        ValueError: total < 0, no weights, or a negative weight.
    """
    w = np.asarray(weights, dtype=float)
    if total < 0 or w.size == 0 or np.any(w < 0):
        raise ValueError(f"need total >= 0 and non-negative weights, got {total}, {weights}")
    if w.sum() == 0:
        w = np.ones_like(w)
    raw = total * w / w.sum()
    out = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - out), kind="stable")[: total - out.sum()]:
        out[i] += 1
    return [int(x) for x in out]


def gd_fixed_steps(stages: Sequence[Stage], theta0: np.ndarray, steps: Sequence[int], lr_scale: float = 1.0) -> np.ndarray:
    """GD with exactly ``steps[j]`` steps of size lr_scale/L_j on stage j, warm-starting
    each stage from the last; returns the final θ ``(d,)``.

    Raises:
        ValueError: ``steps`` length differs from the number of stages, or a negative count.
    """
    if len(steps) != len(stages) or any(n < 0 for n in steps):
        raise ValueError(f"need one non-negative step count per stage, got {list(steps)}")
    theta = _vector(theta0, "theta0", stages[0].opt.shape[0]).copy()
    for st, n in zip(stages, steps):
        lr = lr_scale / st.L
        for _ in range(int(n)):
            theta = theta - lr * st.grad(theta)
    return theta


def budget_comparison(
    stages: Sequence[Stage], theta0: np.ndarray, budgets: Sequence[int], eps: float
) -> dict[str, np.ndarray]:
    """Same total budget T for both: direct spends T steps on the last stage; the
    curriculum splits T across stages in proportion to each stage's bound
    (:func:`curriculum_bound`). Returns the final ‖θ − θ*_J‖² of each.

    Returns:
        ``{"budgets": (B,), "direct": (B,), "curriculum": (B,)}``.
    """
    optima = np.array([s.opt for s in stages])
    w = curriculum_bound(theta0, optima, stage_kappas(stages), eps).stage_steps
    target = stages[-1].opt
    direct, curr = [], []
    for b in budgets:
        direct.append(mean_sq_dist(gd_fixed_steps(list(stages)[-1:], theta0, [int(b)]), target))
        curr.append(mean_sq_dist(gd_fixed_steps(stages, theta0, split_budget(int(b), w)), target))
    return {"budgets": np.asarray(budgets, dtype=int), "direct": np.array(direct), "curriculum": np.array(curr)}


# ----------------------------------------------------------------------------------------
# sweeps over path geometry
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PathConfig:
    """One curriculum geometry of a sweep.

    Attributes:
        n_stages: J ≥ 1.
        spacing: one of :data:`SPACINGS`.
        bend: sideways amplitude (relative to the distance); see :func:`make_path`.
        overshoot: ≥ 0; > 0 makes a detour.
        kappa_first, kappa_last: κ of the first and last stage (geometric in between).
        family: ``"quadratic"`` or ``"logistic"``.
    """

    n_stages: int
    spacing: str = "uniform"
    bend: float = 0.0
    overshoot: float = 0.0
    kappa_first: float = 10.0
    kappa_last: float = 10.0
    family: str = "quadratic"

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown family {self.family!r}; accepted: {FAMILIES}")
        if self.spacing not in SPACINGS:
            raise ValueError(f"unknown spacing {self.spacing!r}; accepted: {SPACINGS}")


def build_problem(
    config: PathConfig, *, dim: int = 10, distance: float = 10.0, seed: int = 0
) -> tuple[np.ndarray, list[Stage]]:
    """θ0 = 0 and the stages of ``config``: the target is at ``distance`` in a seeded random
    direction; optima (quadratic) or teachers (logistic) follow :func:`make_path`.

    Returns:
        ``(theta0 (d,), stages)``.
    Raises:
        ValueError: dim < 1 (or < 2 with a bend), distance ≤ 0, or an invalid config.
    """
    _positive(distance, "distance")
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(dim)
    target = distance * v / np.linalg.norm(v)
    theta0 = np.zeros(dim)
    path = make_path(
        theta0, target, config.n_stages, spacing=config.spacing, bend=config.bend, overshoot=config.overshoot, seed=seed + 1
    )
    kappas = kappa_schedule(config.n_stages, config.kappa_first, config.kappa_last)
    if config.family == "quadratic":
        return theta0, list(quadratic_stages(path, kappas, seed=seed + 2))
    return theta0, list(logistic_stages(path, kappas, seed=seed + 2))


def measure(
    config: PathConfig,
    *,
    dim: int = 10,
    distance: float = 10.0,
    eps: float = 1e-4,
    seed: int = 0,
    max_steps_per_stage: int = 100_000,
) -> dict[str, Any]:
    """Run the curriculum and direct GD (step 1/L) for one config and compute the bound.

    Returns:
        a flat record: the config fields; ``curriculum_steps``, ``direct_steps`` (GD steps
        to ε; −1 when not reached), ``stage_steps`` (list), ``bound`` and ``direct_bound``
        (steps, :func:`curriculum_bound`), ``log_sum`` (Σ log d_j²), ``log_sum_eps``
        (Σ log(max(d_j², ε)/ε)), ``kappa_weighted`` (Σ κ_j log(max(d_j², ε)/ε)),
        ``monotone`` (:func:`is_monotone`), ``curriculum_beats_direct``.
    """
    theta0, stages = build_problem(config, dim=dim, distance=distance, seed=seed)
    optima = np.array([s.opt for s in stages])
    kappas = stage_kappas(stages)
    b = curriculum_bound(theta0, optima, kappas, eps)
    bd = curriculum_bound(theta0, optima[-1:], kappas[-1:], eps)
    cur = run_curriculum(stages, theta0, eps, max_steps_per_stage=max_steps_per_stage)
    dire = run_direct(stages, theta0, eps, max_steps_per_stage=max_steps_per_stage)
    log_eps = np.log(np.maximum(b.hops**2, eps) / eps)
    rec: dict[str, Any] = {f.name: getattr(config, f.name) for f in fields(config)}
    rec.update(
        curriculum_steps=cur.total_steps if cur.reached else -1,
        direct_steps=dire.total_steps if dire.reached else -1,
        stage_steps=cur.stage_steps,
        bound=b.total,
        direct_bound=bd.total,
        log_sum=b.log_sum,
        log_sum_eps=float(log_eps.sum()),
        kappa_weighted=float(np.sum(kappas * log_eps)),
        monotone=is_monotone(theta0, optima),
        curriculum_beats_direct=bool(cur.reached and dire.reached and cur.total_steps < dire.total_steps),
    )
    return rec


def sweep_grid(
    n_stages: Sequence[int] = (1, 2, 3, 4, 6),
    spacings: Sequence[str] = SPACINGS,
    bends: Sequence[float] = (0.0, 0.5),
    kappas: Sequence[float] = (10.0, 100.0),
    rising_from: float | None = 2.0,
    family: str = "quadratic",
) -> list[PathConfig]:
    """The Cartesian product of path geometries: number of stages × spacing × bend × final
    κ × κ schedule (constant, and rising from ``rising_from`` when given). Duplicates
    (e.g. spacing is irrelevant for J = 1) are dropped."""
    out: list[PathConfig] = []
    seen: set[tuple] = set()
    for j in n_stages:
        for sp in spacings:
            for bend in bends:
                for k in kappas:
                    for k0 in [k] + ([rising_from] if rising_from is not None and j > 1 else []):
                        cfg = PathConfig(
                            n_stages=j,
                            spacing=sp if j > 1 else "uniform",
                            bend=bend if j > 1 else 0.0,
                            kappa_first=float(k0),
                            kappa_last=float(k),
                            family=family,
                        )
                        key = tuple(getattr(cfg, f.name) for f in fields(cfg))
                        if key not in seen:
                            seen.add(key)
                            out.append(cfg)
    return out


def sweep(configs: Sequence[PathConfig], **kwargs: Any) -> list[dict[str, Any]]:
    """:func:`measure` for every config (keyword arguments passed on); one record each."""
    return [measure(c, **kwargs) for c in configs]


# ----------------------------------------------------------------------------------------
# statistics (numpy only)
# ----------------------------------------------------------------------------------------
def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation of two equal-length samples (n ≥ 2, neither constant).

    Raises:
        ValueError: lengths differ, n < 2, or a constant sample.
    """
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size < 2:
        raise ValueError(f"need two 1-D samples of equal length >= 2, got {a.shape} and {b.shape}")
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt(float(a @ a) * float(b @ b))
    if den == 0:
        raise ValueError("correlation undefined for a constant sample")
    return float(a @ b) / den


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x), dtype=float)
    for v in np.unique(x):  # average ranks of ties
        m = x == v
        ranks[m] = ranks[m].mean()
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (Pearson of average ranks); same errors as :func:`pearson`."""
    return pearson(_ranks(np.asarray(x, dtype=float)), _ranks(np.asarray(y, dtype=float)))


def fit_line(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Least-squares line y ≈ slope·x + intercept; returns ``(slope, intercept)``.

    Raises:
        ValueError: lengths differ, n < 2, or constant x.
    """
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size < 2 or np.ptp(a) == 0:
        raise ValueError("need two 1-D samples of equal length >= 2 with non-constant x")
    slope, intercept = np.polyfit(a, b, 1)
    return float(slope), float(intercept)


def correlation_summary(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Measured curriculum cost against the bound across sweep records (:func:`measure`).

    Only records whose curriculum reached ε enter. Returns ``n``, ``pearson`` and
    ``spearman`` (measured steps vs bound steps), the fitted line ``slope``/``intercept``,
    ``bound_violations`` (records with measured > bound: 0 whenever the assumptions hold),
    ``ratio_min``/``ratio_max`` of measured/bound, and ``within_kappa_pearson``: for
    records with one κ at every stage, the Pearson correlation of measured steps with the
    theorem's unweighted Σ_j log(max(d_j², ε)/ε), per κ (groups of ≥ 3 with a
    non-constant sum), so that κ alone cannot produce the correlation.

    Raises:
        ValueError: fewer than 2 usable records.
    """
    ok = [r for r in records if r["curriculum_steps"] >= 0]
    if len(ok) < 2:
        raise ValueError(f"need at least 2 records whose curriculum reached eps, got {len(ok)}")
    m = np.array([r["curriculum_steps"] for r in ok], dtype=float)
    b = np.array([r["bound"] for r in ok], dtype=float)
    slope, intercept = fit_line(b, m)
    ratio = m / np.maximum(b, 1)
    within: dict[str, float] = {}
    for k in sorted({r["kappa_last"] for r in ok if r["kappa_first"] == r["kappa_last"]}):
        grp = [r for r in ok if r["kappa_first"] == r["kappa_last"] == k]
        x = [r["log_sum_eps"] for r in grp]
        if len(grp) >= 3 and np.ptp(x) > 0:
            within[f"{k:g}"] = pearson(x, [r["curriculum_steps"] for r in grp])
    return {
        "n": len(ok),
        "pearson": pearson(b, m),
        "spearman": spearman(b, m),
        "slope": slope,
        "intercept": intercept,
        "bound_violations": int(np.sum(m > b)),
        "ratio_min": float(ratio.min()),
        "ratio_max": float(ratio.max()),
        "within_kappa_pearson": within,
    }


# ----------------------------------------------------------------------------------------
# SGD: noise calibration, curriculum against direct training, cost against the sum of logs
# ----------------------------------------------------------------------------------------
def _eigenvalues(stage: Stage) -> np.ndarray:
    eig = getattr(stage, "eigenvalues", None)
    if eig is None:
        raise ValueError(f"{type(stage).__name__} has no Hessian eigenvalues: the SGD noise floor needs a quadratic stage")
    return np.asarray(eig, dtype=float)


def noise_std_for_floor(eigenvalues: Sequence[float], lr: float, floor: float) -> float:
    """The gradient-noise σ whose stationary SGD error (:func:`sgd_noise_floor`) equals
    ``floor``: the floor is linear in σ², so σ = √(floor / floor(σ = 1)).

    Args:
        eigenvalues: Hessian eigenvalues λ_i > 0 of a quadratic stage.
        lr: step η with 0 < η λ_i < 2.
        floor: target E‖θ − θ*‖² > 0 (squared parameter units).
    Returns:
        σ > 0, the standard deviation per gradient coordinate.
    Raises:
        ValueError: floor ≤ 0, or what :func:`sgd_noise_floor` rejects.
    """
    floor = _positive(floor, "floor")
    return math.sqrt(floor / sgd_noise_floor(eigenvalues, lr, 1.0))


def stage_noise_floors(stages: Sequence[Stage], noise_std: float, lr_scale: float = 1.0) -> np.ndarray:
    """``(J,)`` SGD noise floors of quadratic stages, each at its own step lr_scale / L_j
    (the step :func:`run_curriculum` uses). With one σ for all stages, well-conditioned
    stages (large steps) have the highest floors.

    Raises:
        ValueError: a stage without eigenvalues (not quadratic), or lr_scale ≥ 2.
    """
    return np.array([sgd_noise_floor(_eigenvalues(s), lr_scale / s.L, noise_std) for s in stages])


def calibrate_noise(stages: Sequence[Stage], eps: float, floor_ratio: float, lr_scale: float = 1.0) -> float:
    """σ such that the **highest** noise floor among the stages (at step lr_scale / L_j)
    equals ``floor_ratio``·ε. With ``floor_ratio`` < 1 every stage's floor is below ε, so
    SGD reaches ε at every stage (in expectation); with ``floor_ratio`` > 1 at least one
    stage cannot.

    Args:
        stages: quadratic stages (:class:`QuadraticStage`).
        eps: ε > 0.
        floor_ratio: > 0.
    Returns:
        σ > 0.
    Raises:
        ValueError: non-quadratic stages, ε or floor_ratio ≤ 0, lr_scale ≥ 2.
    """
    if len(stages) == 0:
        raise ValueError("need at least one stage")
    eps, floor_ratio = _positive(eps, "eps"), _positive(floor_ratio, "floor_ratio")
    unit = float(stage_noise_floors(stages, 1.0, lr_scale).max())
    return math.sqrt(floor_ratio * eps / unit)


def noise_floor_experiment(
    stage: Stage,
    theta0: np.ndarray,
    eps: float,
    ratios: dict[str, float] | None = None,
    *,
    n_chains: int = 64,
    n_trace: int = 600,
    max_steps: int = 3000,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """SGD with step 1/L on one quadratic stage, with σ calibrated so that the predicted
    floor is ``ratio``·ε, for each named ratio (default ``{"below": 0.1, "above": 30.0}``).

    For each name: ``noise_std`` (σ), ``floor`` (predicted, :func:`sgd_noise_floor`),
    ``empirical_floor`` (mean over chains of ‖θ − θ*‖², averaged over the second half of an
    ``n_trace``-step run, :func:`sgd_error_trace`), ``status`` and ``steps`` of
    :func:`run_direct` with the ε stopping rule (cap ``max_steps``) and ``trace``
    (``(n_trace + 1,)`` array, for plotting). Units: σ per gradient coordinate, floors
    and ε in squared parameter distance, steps are gradient steps.

    Theory: the floor is the stationary variance of an AR(1) process per eigen-direction
    (standard SGD analysis: with a fixed step SGD converges only to a neighbourhood of θ*,
    Bottou, Curtis & Nocedal 2018, Thm 4.6); the reconstructed Theorem 4.1 needs ε above it.

    Args:
        stage: a :class:`QuadraticStage` (the floor needs its eigenvalues).
        theta0: ``(d,)`` start.
        eps: ε > 0.
        ratios: name → floor / ε (each > 0).
    Raises:
        ValueError: a non-quadratic stage, n_trace < 2, or what the callees reject.
    """
    ratios = {"below": 0.1, "above": 30.0} if ratios is None else ratios
    if n_trace < 2:
        raise ValueError(f"n_trace must be >= 2, got {n_trace}")
    eig, lr = _eigenvalues(stage), 1.0 / stage.L
    out: dict[str, dict[str, Any]] = {}
    for name, ratio in ratios.items():
        sigma = noise_std_for_floor(eig, lr, _positive(ratio, f"ratio {name!r}") * eps)
        run = run_direct([stage], theta0, eps, noise_std=sigma, n_chains=n_chains, max_steps_per_stage=max_steps, seed=seed)
        trace = sgd_error_trace(stage, theta0, lr=lr, noise_std=sigma, n_steps=n_trace, n_chains=n_chains, seed=seed)
        out[name] = {
            "noise_std": sigma,
            "floor": sgd_noise_floor(eig, lr, sigma),
            "empirical_floor": float(trace[n_trace // 2 :].mean()),
            "status": run.status,
            "steps": run.total_steps,
            "trace": trace,
        }
    return out


def step_size_experiment(
    stage: Stage,
    theta0: np.ndarray,
    eps: float,
    scales: Sequence[float] = (1.0, 1.9, 1.99, 2.01, 2.1),
    *,
    max_steps: int = 20_000,
    n_trace: int = 400,
) -> dict[str, Any]:
    """Deterministic GD with step η = scale / L on one stage, for each scale.

    On a quadratic the error along the stiffest eigen-direction is multiplied by
    |1 − ηL| per step, so GD converges for η < 2/L and diverges for η > 2/L (the
    contraction argument behind the bound needs η ≤ 2/L; the bound itself uses 1/L).

    Returns:
        ``{"lr_scales": [...], "statuses": [...], "steps": [...], "traces": [...]}`` — one
        entry per scale; ``traces[i]`` is ‖θ_t − θ*‖² for the first ``n_trace`` + 1 iterates
        (shorter when the run stopped earlier).
    Raises:
        ValueError: a scale ≤ 0, or what :func:`run_direct` rejects.
    """
    res: dict[str, Any] = {"lr_scales": [], "statuses": [], "steps": [], "traces": []}
    for scale in scales:
        run = run_direct([stage], theta0, eps, lr_scale=_positive(scale, "scale"), max_steps_per_stage=max_steps, record=True)
        err = np.sum((run.iterates() - stage.opt) ** 2, axis=-1)
        res["lr_scales"].append(float(scale))
        res["statuses"].append(run.status)
        res["steps"].append(run.total_steps)
        res["traces"].append(err[: n_trace + 1])
    return res


#: The non-convex runs of :func:`double_well_experiment`: name → (start θ, tilts of the stages).
DOUBLE_WELL_RUNS: dict[str, tuple[tuple[float, float], tuple[float, ...]]] = {
    "direct_bad_start": ((-1.5, 1.0), (0.1,)),
    "curriculum_bad_start": ((-1.5, 1.0), (0.8, 0.4, 0.1)),
    "direct_good_start": ((0.2, 1.0), (0.1,)),
    "detour_good_start": ((0.2, 1.0), (-0.8, -0.4, 0.1)),
}


def double_well_experiment(
    eps: float, runs: dict[str, tuple[Sequence[float], Sequence[float]]] | None = None, *, max_steps: int = 20_000
) -> dict[str, dict[str, Any]]:
    """GD (step 1/11, the curvature bound of :class:`DoubleWellStage` on |θ₀| ≤ 2) through
    tilted double wells, one stage per tilt, warm-started (:func:`run_curriculum`).

    Args:
        eps: ε > 0 on the squared distance to each stage's global minimum.
        runs: name → (start ``(2,)``, tilts); default :data:`DOUBLE_WELL_RUNS`.
    Returns:
        name → ``{"tilts": list, "status": str, "steps": int, "bound_if_convex": int,
        "well_coordinate": (steps + 1,) array of θ₀}``. ``bound_if_convex`` is
        :func:`curriculum_bound` from the global optima and the local κ — what the
        reconstructed Theorem 4.1 would promise if the stages were convex; a
        ``"stalled"`` status (stuck in the other well) shows it does not apply.
    """
    runs = DOUBLE_WELL_RUNS if runs is None else runs
    out: dict[str, dict[str, Any]] = {}
    for name, (start, tilts) in runs.items():
        stages = [DoubleWellStage(float(c), 2) for c in tilts]
        run = run_curriculum(stages, np.asarray(start, dtype=float), eps, max_steps_per_stage=max_steps, record=True)
        b = curriculum_bound(start, np.array([s.opt for s in stages]), stage_kappas(stages), eps)
        out[name] = {
            "tilts": [float(c) for c in tilts],
            "status": run.status,
            "steps": run.total_steps,
            "bound_if_convex": b.total,
            "well_coordinate": run.iterates()[:, 0],
        }
    return out


def sgd_measure(
    config: PathConfig,
    *,
    floor_ratio: float,
    dim: int = 10,
    distance: float = 10.0,
    eps: float = 1e-4,
    seed: int = 0,
    n_chains: int = 16,
    max_steps_per_stage: int = 20_000,
) -> dict[str, Any]:
    """SGD with and without a curriculum on one quadratic path problem
    (:func:`build_problem` with ``seed``), plus the same runs without noise (GD).

    σ is calibrated with :func:`calibrate_noise` on the curriculum's stages (the highest
    stage floor = ``floor_ratio``·ε); direct training uses the same σ on the last stage.
    Each SGD run has R = ``n_chains`` independent chains and stops a stage when the mean
    over chains of ‖θ − θ*_j‖² is ≤ ε (an estimate of the expected error). Steps are
    gradient steps (one per chain in parallel); floors and ε are squared parameter
    distances. Source: the reconstructed Theorem 4.1 (module docstring) for the cost, the
    floor formula of :func:`sgd_noise_floor` for where SGD stops: a stage whose floor is
    above ε is never finished, so a curriculum stops at its first such stage.

    Returns:
        a flat record: the config fields; ``seed``, ``eps``, ``floor_ratio``, ``noise_std``;
        ``stage_floors`` (list, squared units) and ``direct_floor``;
        ``first_stage_above_eps`` (1-based index of the first stage whose floor exceeds ε,
        or 0); SGD ``curriculum_steps``/``direct_steps`` (−1 when not reached),
        ``curriculum_status``/``direct_status``, ``failed_stage`` (1-based, 0 when the
        curriculum reached ε at every stage); GD ``gd_curriculum_steps``/``gd_direct_steps``;
        ``bound``, ``log_sum`` (Σ log d_j²), ``log_sum_eps`` (Σ log(max(d_j², ε)/ε)),
        ``monotone``, ``curriculum_beats_direct`` (both reached and fewer SGD steps).
    Raises:
        ValueError: a logistic config (its floor has no closed form) or invalid arguments.
    """
    if config.family != "quadratic":
        raise ValueError("sgd_measure needs quadratic stages (closed-form noise floor)")
    eps = _positive(eps, "eps")
    theta0, stages = build_problem(config, dim=dim, distance=distance, seed=seed)
    sigma = calibrate_noise(stages, eps, floor_ratio)
    floors = stage_noise_floors(stages, sigma)
    above = [j + 1 for j, f in enumerate(floors) if f > eps]
    kw = dict(max_steps_per_stage=max_steps_per_stage, n_chains=n_chains)
    cur = run_curriculum(stages, theta0, eps, noise_std=sigma, seed=seed, **kw)
    dire = run_direct(stages, theta0, eps, noise_std=sigma, seed=seed + 10_000, **kw)
    gd_cur = run_curriculum(stages, theta0, eps, max_steps_per_stage=max_steps_per_stage)
    gd_dir = run_direct(stages, theta0, eps, max_steps_per_stage=max_steps_per_stage)
    optima = np.array([s.opt for s in stages])
    b = curriculum_bound(theta0, optima, stage_kappas(stages), eps)
    rec: dict[str, Any] = {f.name: getattr(config, f.name) for f in fields(config)}
    rec.update(
        seed=int(seed),
        eps=eps,
        floor_ratio=float(floor_ratio),
        noise_std=sigma,
        stage_floors=[float(f) for f in floors],
        direct_floor=float(floors[-1]),
        first_stage_above_eps=above[0] if above else 0,
        curriculum_steps=cur.total_steps if cur.reached else -1,
        direct_steps=dire.total_steps if dire.reached else -1,
        curriculum_status=cur.status,
        direct_status=dire.status,
        failed_stage=0 if cur.reached else len(cur.descents),
        gd_curriculum_steps=gd_cur.total_steps if gd_cur.reached else -1,
        gd_direct_steps=gd_dir.total_steps if gd_dir.reached else -1,
        bound=b.total,
        log_sum=b.log_sum,
        log_sum_eps=float(np.sum(np.log(np.maximum(b.hops**2, eps) / eps))),
        monotone=is_monotone(theta0, optima),
        curriculum_beats_direct=bool(cur.reached and dire.reached and cur.total_steps < dire.total_steps),
    )
    return rec


def sgd_sweep(
    configs: Sequence[PathConfig], seeds: Sequence[int], floor_ratios: Sequence[float], **kwargs: Any
) -> list[dict[str, Any]]:
    """:func:`sgd_measure` for every config × seed × floor ratio (keyword arguments passed
    on); one record each, in that order."""
    return [sgd_measure(c, floor_ratio=r, seed=s, **kwargs) for c in configs for s in seeds for r in floor_ratios]


def _spread(values: Sequence[float]) -> dict[str, Any]:
    v = np.asarray(values, dtype=float)
    return {
        "values": [float(x) for x in v],
        "mean": float(v.mean()),
        "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
        "min": float(v.min()),
        "max": float(v.max()),
    }


def sgd_slope_summary(records: Sequence[dict[str, Any]], x: str = "log_sum_eps") -> dict[str, Any]:
    """Measured SGD curriculum cost against the theorem's sum, seed by seed.

    For each seed, fits steps ≈ slope·x + intercept over the records of that seed whose SGD
    curriculum reached ε (x = ``log_sum_eps`` = Σ_j log(max(d_j², ε)/ε) by default, or
    ``log_sum``), and the same for the noiseless GD runs of the same problems. With one κ
    for every stage the bound's slope is κ (steps per unit of the sum); measured slopes
    are below it.

    Returns:
        ``n_seeds``; ``slope``, ``gd_slope``, ``pearson``, ``gd_pearson``: each
        ``{"values": [per seed], "mean", "std" (ddof 1), "min", "max"}``; ``n_per_seed``
        (points in each fit); ``sgd_over_gd_min``/``sgd_over_gd_max`` (SGD curriculum
        steps / GD curriculum steps over all reached records with GD steps > 0);
        ``kappas`` (the distinct final κ of the records).
    Raises:
        ValueError: fewer than 2 seeds with ≥ 3 reached records and a non-constant x.
    """
    if x not in ("log_sum_eps", "log_sum"):
        raise ValueError(f"x must be 'log_sum_eps' or 'log_sum', got {x!r}")
    seeds = sorted({r["seed"] for r in records})
    per: dict[str, list[float]] = {"slope": [], "gd_slope": [], "pearson": [], "gd_pearson": []}
    n_per: list[int] = []
    for s in seeds:
        ok = [r for r in records if r["seed"] == s and r["curriculum_steps"] >= 0 and r["gd_curriculum_steps"] >= 0]
        xs = [r[x] for r in ok]
        if len(ok) < 3 or np.ptp(xs) == 0:
            continue
        per["slope"].append(fit_line(xs, [r["curriculum_steps"] for r in ok])[0])
        per["gd_slope"].append(fit_line(xs, [r["gd_curriculum_steps"] for r in ok])[0])
        per["pearson"].append(pearson(xs, [r["curriculum_steps"] for r in ok]))
        per["gd_pearson"].append(pearson(xs, [r["gd_curriculum_steps"] for r in ok]))
        n_per.append(len(ok))
    if len(n_per) < 2:
        raise ValueError(f"need at least 2 seeds with >= 3 usable records, got {len(n_per)}")
    ratios = [r["curriculum_steps"] / r["gd_curriculum_steps"] for r in records
              if r["curriculum_steps"] >= 0 and r["gd_curriculum_steps"] > 0]
    return {
        "n_seeds": len(n_per),
        **{k: _spread(v) for k, v in per.items()},
        "n_per_seed": n_per,
        "sgd_over_gd_min": float(min(ratios)),
        "sgd_over_gd_max": float(max(ratios)),
        "kappas": sorted({float(r["kappa_last"]) for r in records}),
    }


def sgd_case_summary(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Curriculum against direct SGD over seeds, for the records of one config and one
    floor ratio.

    Returns:
        ``n`` (records), ``reached_curriculum``/``reached_direct`` (counts),
        ``wins`` (records where the curriculum reached ε in fewer steps than direct),
        ``curriculum_steps``/``direct_steps`` (lists, −1 = not reached),
        ``diff`` (:func:`_spread` of curriculum − direct steps over records where both
        reached; None when none did), ``statuses`` (list of curriculum statuses),
        ``failed_stages`` (list), ``first_stage_above_eps`` and ``direct_floor_over_eps``
        (from the first record: they depend on the config, ε and the ratio only).
    Raises:
        ValueError: no records, or records of different configs or floor ratios.
    """
    if not records:
        raise ValueError("no records")
    keys = {(r["floor_ratio"], r["eps"], tuple(r[f.name] for f in fields(PathConfig))) for r in records}
    if len(keys) != 1:
        raise ValueError("records must share one config and one floor ratio")
    both = [r for r in records if r["curriculum_steps"] >= 0 and r["direct_steps"] >= 0]
    return {
        "n": len(records),
        "floor_ratio": float(records[0]["floor_ratio"]),
        "reached_curriculum": sum(r["curriculum_steps"] >= 0 for r in records),
        "reached_direct": sum(r["direct_steps"] >= 0 for r in records),
        "wins": sum(bool(r["curriculum_beats_direct"]) for r in records),
        "curriculum_steps": [int(r["curriculum_steps"]) for r in records],
        "direct_steps": [int(r["direct_steps"]) for r in records],
        "gd_curriculum_steps": [int(r["gd_curriculum_steps"]) for r in records],
        "gd_direct_steps": [int(r["gd_direct_steps"]) for r in records],
        "diff": _spread([r["curriculum_steps"] - r["direct_steps"] for r in both]) if both else None,
        "statuses": [r["curriculum_status"] for r in records],
        "direct_statuses": [r["direct_status"] for r in records],
        "failed_stages": [int(r["failed_stage"]) for r in records],
        "first_stage_above_eps": int(records[0]["first_stage_above_eps"]),
        "direct_floor_over_eps": float(records[0]["direct_floor"] / records[0]["eps"]),
    }


# ----------------------------------------------------------------------------------------
# what notebook 08 records (mmed/checkers/nb08_curriculum_theory.py reads it)
# ----------------------------------------------------------------------------------------
#: the keys of a :func:`measure` record kept per named case
CASE_METRIC_KEYS = ("curriculum_steps", "direct_steps", "bound", "direct_bound", "monotone", "curriculum_beats_direct")


def case_metrics(record: dict[str, Any]) -> dict[str, Any]:
    """A :func:`measure` record reduced to :data:`CASE_METRIC_KEYS` plus ``stage_steps`` (ints)."""
    return {**{k: record[k] for k in CASE_METRIC_KEYS}, "stage_steps": [int(s) for s in record["stage_steps"]]}


def assumption_metrics(floor_res: dict[str, dict[str, Any]], step_res: dict[str, Any],
                       nc_res: dict[str, dict[str, Any]], eps: float) -> dict[str, dict[str, Any]]:
    """The three assumption checks in recorded form: ``{"sgd", "step_size", "nonconvex"}``.

    Args:
        floor_res: :func:`noise_floor_experiment` (per tag: ``floor``, ``empirical_floor``,
            ``status``, ``steps``), recorded as ``<key>_<tag>`` next to ``eps``.
        step_res: :func:`step_size_experiment` (``lr_scales``, ``statuses``, ``steps``).
        nc_res: :func:`double_well_experiment` (per run: ``tilts``, ``status``, ``steps``,
            ``bound_if_convex``).
    """
    return {
        "sgd": {"eps": eps, **{f"{k}_{tag}": r[k] for tag, r in floor_res.items()
                               for k in ("floor", "empirical_floor", "status", "steps")}},
        "step_size": {k: step_res[k] for k in ("lr_scales", "statuses", "steps")},
        "nonconvex": {name: {k: r[k] for k in ("tilts", "status", "steps", "bound_if_convex")} for name, r in nc_res.items()},
    }


def study_metrics(
    *, records_quadratic: Sequence[dict[str, Any]], records_logistic: Sequence[dict[str, Any]],
    cases: dict[str, dict[str, Any]], budgets: dict[str, dict[str, Any]], assumptions: dict[str, dict[str, Any]],
    sgd_records: Sequence[dict[str, Any]], n_sgd_configs: int, sgd_slope: dict[str, Any],
    sgd_cases: dict[str, Any], parameters: dict[str, Any], seconds: float,
) -> dict[str, Any]:
    """The metrics notebook 08 records, from its parts: the sweeps' records
    (:func:`sweep`) and :func:`correlation_summary` of each family, the named cases
    (:func:`case_metrics`), the budget comparisons (:func:`budget_comparison`, as float
    lists), :func:`assumption_metrics`, the SGD sweep (:func:`sgd_sweep` records, the number
    of its configurations, :func:`sgd_slope_summary`) with its floor ratio taken from
    ``parameters["floor_ratios"][0]`` and chains from ``parameters["sgd_chains"]``, the SGD
    cases (:func:`sgd_case_summary` per case and ratio), the parameters and the wall time
    (seconds)."""
    return {
        "n_configs": len(records_quadratic) + len(records_logistic),
        "n_quadratic": len(records_quadratic),
        "n_logistic": len(records_logistic),
        "quadratic": correlation_summary(records_quadratic),
        "logistic": correlation_summary(records_logistic),
        "cases": {k: case_metrics(r) for k, r in cases.items()},
        "budget": {k: {kk: [float(x) for x in v] for kk, v in r.items()} for k, r in budgets.items()},
        **assumptions,
        "sgd_paths": {**sgd_slope, "floor_ratio": parameters["floor_ratios"][0], "n_records": len(sgd_records),
                      "n_configs": n_sgd_configs, "n_chains": parameters["sgd_chains"]},
        "sgd_cases": sgd_cases,
        "parameters": parameters,
        "seconds": round(seconds, 2),
    }
