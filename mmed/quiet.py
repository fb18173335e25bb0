"""Library output a reader does not need, switched off in one place.

In the foundation layer (docs/architecture.md#layers) so that both the notebooks (an entry
point) and the worker pool (:mod:`mmed.parallel`) can call it; it imports its libraries
inside the function, so importing this module imports none of them.
"""

from __future__ import annotations


def quiet_libraries() -> None:
    """Keep outputs readable: transformers/datasets progress bars and info logs off, the
    library deprecation warnings that do not concern the reader silenced. Run by a notebook's
    context (:func:`mmed.notebooks.notebook_context`) and by every worker process of
    :mod:`mmed.parallel` before it imports the training libraries."""
    import logging
    import warnings

    import datasets
    import transformers

    # bitsandbytes warns on import that an optional CPU kernel package is missing (and
    # kernels/_internals/hf_hub.py that it cannot check its publisher offline); the fallback
    # it uses instead is correct, and 4-bit is only used in the QLoRA test.
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    logging.getLogger("kernels").setLevel(logging.ERROR)

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    # library-internal deprecations, e.g. TRL (trl/models/utils.py) and PEFT (peft_model.py)
    # reading transformers' deprecated ``is_gradient_checkpointing``; our own trainer
    # arguments use the current names (mmed.rl.grpo.checkpointing_key)
    warnings.filterwarnings("ignore", category=FutureWarning)
