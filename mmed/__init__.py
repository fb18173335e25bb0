"""mmed: a reference implementation of MMedAgent-RL (arXiv 2506.00555, v3).

Subpackages, in the order the data flows (docs/architecture.md#layers, :data:`LAYERS`):
run folders and training progress (:mod:`mmed.runs`, :mod:`mmed.progress`) → ``mmed.data``
(schema, loaders, data specs, synthetic set) → profiles (:mod:`mmed.config`, validated
against the data's benchmarks) and the worker pool (:mod:`mmed.parallel`) → ``mmed.models``
(policy models, tiny offline Qwen2.5-VL, LoRA/QLoRA) → ``mmed.agents`` (prompts, parsing,
stratification, scoring, triage, specialists, attending, pipeline) → ``mmed.rl`` (rewards,
GRPO, cold start, triage GRPO, C-MARL curriculum) → ``mmed.eval`` (metrics tables, the
triage evaluation, seed replicates, the C-MARL report, ablations and their claims, test-time
scaling) → ``mmed.viz`` → the entry points (command line, notebooks, the inspection step).

Research software: not for clinical decisions.
"""

__version__ = "0.1.0"

#: The layers of ``mmed/`` in the order the data flows, each ``(name, paths)``: a module
#: may import from its own layer and the layers before it, never from one after it. A path
#: ending in ``/`` is a folder (every module in it). The table in docs/architecture.md#layers
#: lists the same paths in the same order, and ``tests/test_layers.py`` checks both: the
#: table against this constant and every import of every module (function-level ones too)
#: against the order.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundation", ("mmed/runs.py", "mmed/progress.py", "mmed/quiet.py", "mmed/processes.py")),
    ("data", ("mmed/data/",)),
    ("profiles", ("mmed/config.py", "mmed/parallel.py")),
    ("models", ("mmed/models/",)),
    ("agents", ("mmed/agents/",)),
    ("rl", ("mmed/rl/",)),
    ("eval", ("mmed/eval/",)),
    ("viz", ("mmed/viz/",)),
    ("entry points", ("mmed/__main__.py", "mmed/cli.py", "mmed/cli_commands.py", "mmed/consult.py",
                      "mmed/inspection.py", "mmed/notebooks.py", "mmed/notebook_guide.py", "mmed/checks.py", "mmed/checkers/",
                      "notebooks/")),
)
#: Modules outside every layer: this package's own ``__init__`` (which imports nothing) and
#: the Theorem 4.1 study, which measures no system and imports nothing from ``mmed``.
OUTSIDE_LAYERS: tuple[str, ...] = ("mmed/__init__.py", "mmed/theory.py")
