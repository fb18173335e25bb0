"""Shared by the training benchmarks: a callback timing every optimizer step."""

from __future__ import annotations

import time

from transformers import TrainerCallback


class StepTimer(TrainerCallback):
    """Wall time of every optimizer step (``on_step_begin`` → ``on_step_end``: rollout
    generation, rewards, loss, backward, optimizer), in seconds, in ``times``."""

    def __init__(self):
        self.times: list[float] = []
        self._t0 = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self._t0)
