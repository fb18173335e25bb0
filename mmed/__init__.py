"""mmed: a reference implementation of MMedAgent-RL (arXiv 2506.00555, v3).

Subpackages, in the order the data flows (docs/architecture.md#layers):
``mmed.data`` (schema, loaders, synthetic set) → ``mmed.models`` (policy models, tiny
offline Qwen2.5-VL, LoRA/QLoRA) → ``mmed.agents`` (prompts, parsing, triage, specialists,
attending, pipeline) → ``mmed.rl`` (rewards, GRPO, cold start, C-MARL curriculum) →
``mmed.eval`` (metrics, stratification, ablations, test-time scaling) → ``mmed.viz``.
Configuration: :mod:`mmed.config` (profiles); run folders: :mod:`mmed.runs`.

Research software: not for clinical decisions.
"""

__version__ = "0.1.0"
