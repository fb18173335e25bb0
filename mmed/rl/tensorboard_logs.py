"""TensorBoard event files of every training, through transformers' own reporting.

Every training of the package (the base pre-training, the cold-start SFT, triage GRPO and
each curriculum stage) runs a transformers ``Trainer`` (TRL's ``SFTTrainer`` /
``GRPOTrainer``) whose ``report_to`` defaults to ``"tensorboard"`` in this code
(:func:`mmed.rl.grpo.trl_grpo_kwargs`, :func:`mmed.rl.sft.sft_kwargs`; a profile may set
``report_to: none`` or another integration). transformers then adds its
``TensorBoardCallback`` (``transformers/integrations/integration_utils.py``), which writes
every logged value as a scalar under ``train/<key>`` (``train/reward``, ``train/entropy``,
``train/loss`` ...) at the trainer's global step.

Where it writes: transformers 5 has no ``logging_dir`` argument any more (deprecated in 5.0,
removed in 5.2, ``transformers/training_args.py``); the callback reads the environment
variable ``TENSORBOARD_LOGGING_DIR`` when it is constructed — in ``Trainer.__init__`` —
and without it writes to ``<output_dir>/runs/<date>_<host>``. :func:`tensorboard_logging_dir`
sets the variable around the trainer's construction only, so each training writes into its
own folder ``runs/<id>/tensorboard/<name>/`` (:meth:`mmed.runs.Run.tensorboard_dir`) and
nothing into a ``runs/`` folder of the working directory or of the trainer's output folder.

Names (:func:`training_name`) say what trained, the seed and, for a curriculum stage, its
position, stratum and entropy coefficient γ: ``cold_start_attending_seed0``,
``triage_grpo_seed0``, ``attending_cmarl_seed0_stage2_medium_gamma0.01``. View them with
``tensorboard --logdir runs/<id>/tensorboard``; read them in Python with :func:`read_scalars`.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

#: the environment variable transformers' ``TensorBoardCallback.__init__`` reads for its folder
TENSORBOARD_ENV = "TENSORBOARD_LOGGING_DIR"
#: the prefix of TensorBoard event files (``tensorboard/summary/writer/event_file_writer.py``)
EVENT_FILE_PREFIX = "events.out.tfevents."


@contextlib.contextmanager
def tensorboard_logging_dir(path: str | os.PathLike[str], *, fresh: bool = False) -> Iterator[Path]:
    """Within the block, a transformers ``Trainer`` built with ``report_to`` holding
    ``"tensorboard"`` writes its event files to ``path`` (created when the first one is).

    Sets ``TENSORBOARD_LOGGING_DIR`` for the block and restores its former value (or its
    absence) afterwards, also on an error; build the trainer inside the block (the callback
    reads the variable at construction, ``train()`` may run outside it).

    Args:
        path: the training's event folder, e.g. ``run.tensorboard_dir("triage_grpo_seed0")``.
        fresh: remove the event files already in ``path`` first (a training that starts
            from step 0 again, not a resume: its curves would be drawn over the old ones).
    Yields:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    if fresh:
        clear_event_files(path)
    before = os.environ.get(TENSORBOARD_ENV)
    os.environ[TENSORBOARD_ENV] = str(path)
    try:
        yield path
    finally:
        if before is None:
            os.environ.pop(TENSORBOARD_ENV, None)
        else:
            os.environ[TENSORBOARD_ENV] = before


def event_files(path: str | os.PathLike[str]) -> list[Path]:
    """The TensorBoard event files directly in ``path`` (sorted; empty when none or no folder)."""
    p = Path(path)
    return sorted(f for f in p.glob(EVENT_FILE_PREFIX + "*") if f.is_file()) if p.is_dir() else []


def clear_event_files(path: str | os.PathLike[str]) -> int:
    """Remove the event files directly in ``path`` (nothing else); returns how many."""
    files = event_files(path)
    for f in files:
        f.unlink()
    return len(files)


def _num(x: float) -> str:
    """A number as it reads in a folder name: ``0``, ``0.01``, ``1e-05`` (``%g``)."""
    return f"{float(x):g}"


def training_name(
    what: str, seed: int, *, stage_index: int | None = None, stage: str | None = None,
    gamma: float | None = None, entropy_target: float | None = None,
) -> str:
    """The TensorBoard run name of one training (a folder under ``runs/<id>/tensorboard``).

    Args:
        what: what trains, e.g. ``"cold_start_attending"``, ``"triage_grpo"``,
            ``"attending_cmarl"`` (the attending's curriculum variant), ``"pretrain_vision"``.
        seed: the training's seed (always in the name: seed replicates share the folder).
        stage_index / stage: a curriculum stage's 1-based position and name (``easy`` ...).
        gamma: the stage's entropy coefficient γ (TRL ``entropy_coef``).
        entropy_target: the stage's entropy target in nats (adaptive entropy), when set.
    Returns:
        e.g. ``attending_cmarl_seed0_stage2_medium_gamma0.01`` or ``triage_grpo_seed1``.
    Raises:
        ValueError: ``what`` is empty or holds a path separator, or a stage name without
            its index.
    """
    if not what or "/" in what or "\\" in what:
        raise ValueError(f"training name must be one folder name, got {what!r}")
    if (stage is None) != (stage_index is None):
        raise ValueError("a curriculum stage needs both stage_index and stage")
    parts = [what, f"seed{int(seed)}"]
    if stage is not None:
        parts.append(f"stage{int(stage_index)}_{stage}")
    if gamma is not None:
        parts.append(f"gamma{_num(gamma)}")
    if entropy_target is not None:
        parts.append(f"target{_num(entropy_target)}")
    return "_".join(parts)


def read_scalars(path: str | os.PathLike[str]) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the event files of one training folder, read back with TensorBoard's
    own reader (``tensorboard/backend/event_processing/event_accumulator.py``,
    ``EventAccumulator`` with no size limit on scalars).

    Args:
        path: a training's event folder (``runs/<id>/tensorboard/<name>``).
    Returns:
        ``{tag: [(step, value), ...]}`` in the order written, e.g. ``"train/reward"``,
        ``"train/entropy"`` (GRPO) or ``"train/loss"`` (SFT); a resumed training's folder
        holds one event file per start, read together.
    Raises:
        FileNotFoundError: ``path`` holds no event file.
    """
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    if not event_files(path):
        raise FileNotFoundError(f"{path}: no TensorBoard event file ({EVENT_FILE_PREFIX}*)")
    acc = EventAccumulator(str(path), size_guidance={SCALARS: 0})
    acc.Reload()
    return {tag: [(int(e.step), float(e.value)) for e in acc.Scalars(tag)] for tag in acc.Tags()[SCALARS]}
