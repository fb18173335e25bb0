"""Shared fixtures. Real data (../shared/data) is optional locally; with CI=true it is required."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()
IN_CI = os.environ.get("CI", "").lower() == "true"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# pre-trained tiny bases are cached per test session, never in the user's cache
os.environ["MMED_BASE_CACHE"] = tempfile.mkdtemp(prefix="mmed-base-cache-")
# so are the TRL/PEFT field lists that profile keys are checked against (mmed.config.library_fields)
os.environ["MMED_FIELDS_CACHE"] = tempfile.mkdtemp(prefix="mmed-fields-cache-")
# and the synthetic sets the steps draw once per machine (mmed.data.sets.cached_synthetic)
os.environ["MMED_SYNTHETIC_CACHE"] = tempfile.mkdtemp(prefix="mmed-synthetic-cache-")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; skips the test when absent, fails it when CI=true."""
    if not SHARED_DATA.is_dir():
        if IN_CI:
            pytest.fail(f"CI=true but real data folder {SHARED_DATA} is missing")
        pytest.skip(f"real data folder {SHARED_DATA} not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def vqa_rad_root(shared_data: Path) -> Path:
    return shared_data / "vqa_rad"


@pytest.fixture(scope="session")
def triage_root(shared_data: Path) -> Path:
    return shared_data / "triage"


@pytest.fixture(scope="session")
def smoke_cold_run(tmp_path_factory):
    """A smoke run folder whose triage and attending are cold-started (built once per session)."""
    from mmed.config import load_profile
    from mmed.rl.cold_start import ensure_cold_start
    from mmed.runs import Run

    prof = load_profile("smoke")
    run = Run.open(tmp_path_factory.mktemp("smoke_run") / "run", profile="smoke", seed=0)
    for agent in ("triage", "attending"):
        ensure_cold_start(run, prof, agent, 0)
    return run


@pytest.fixture(scope="session")
def smoke_attending_cold(tmp_path_factory) -> Path:
    """A smoke run folder (seed 0) whose attending only is cold-started, built once per
    session; tests copy it before changing it."""
    from mmed.config import load_profile
    from mmed.rl.cold_start import ensure_cold_start
    from mmed.runs import Run

    root = tmp_path_factory.mktemp("cmarl") / "cold"
    run = Run.open(root, profile="smoke", seed=0)
    ensure_cold_start(run, load_profile("smoke"), "attending", 0)
    return root


@pytest.fixture(scope="session")
def smoke_curriculum(smoke_attending_cold: Path, tmp_path_factory):
    """``(root, CurriculumResult)``: the smoke C-MARL curriculum (Easy → Medium → Hard)
    trained once per session on a copy of :func:`smoke_attending_cold`; tests copy
    ``root`` before changing it."""
    from mmed.rl.curriculum import train_curriculum

    root = tmp_path_factory.mktemp("cmarl") / "trained"
    shutil.copytree(smoke_attending_cold, root)
    return root, train_curriculum("smoke", root, seed=0, log=lambda m: None)


@pytest.fixture(scope="module")
def smoke_torch_threads():
    """The smoke profile's torch thread count for one test module (restored afterwards);
    modules opt in with ``pytestmark = pytest.mark.usefixtures("smoke_torch_threads")``."""
    import torch

    from mmed.config import apply_torch_threads, load_profile

    before = torch.get_num_threads()
    apply_torch_threads(load_profile("smoke"))
    yield
    torch.set_num_threads(before)
