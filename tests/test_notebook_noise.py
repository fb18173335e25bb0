"""What the notebook runner drops from its kernels' terminal output (mmed.notebooks.NoiseFilter).

The noise samples are copied, byte for byte, from runner logs of this project: a clean-clone
``make demo`` (commit 4aec15c, ``/work/democlone2/demo.log``) and a CI run of the smoke
notebooks (``.ci/run``; notebook 04 starts two worker processes). Paths inside them are
those machines'.
"""

from __future__ import annotations

import pytest

from mmed.notebooks import NoiseFilter

KERNEL_TCP = (
    "[IPKernelApp] WARNING | Kernel is running over TCP without encryption. All communication (including code and "
    "outputs) is sent in plain text and is susceptible to eavesdropping. Use IPC transport or launch with kernel "
    "manager-provisioned CurveZMQ keys to enable transport encryption.\n"
)
KERNELS_TRUST = (
    "Failed to load CPU gemm_4bit_forward from kernels-community: Kernel repository "
    "'kernels-community/quantization-bitsandbytes' could not verify publisher trust status. Set trust_remote_code=True "
    "or add the repository ID to the trust_remote_code allowlist to allow loading kernels from untrusted sources.. "
    "Please make sure you already `pip install kernels` and the kernels >= 0.11.1\n"
)
KERNELS_OFFLINE = (
    "Skipping publisher trust check for 'kernels-community/quantization-bitsandbytes' because Hugging Face Hub is in "
    "offline mode.\n"
    "Failed to load CPU gemm_4bit_forward from kernels-community: Version 1 of "
    "'kernels-community/quantization-bitsandbytes' is not available in the local cache and Hugging Face Hub is in "
    "offline mode. Download the kernel while online first, or pass an explicit `revision=<commit>`.. Please make sure "
    "you already `pip install kernels` and the kernels >= 0.11.1\n"
)
LOADING_BAR = (
    "\rLoading weights:   0%|          | 0/57 [00:00<?, ?it/s]"
    "\rLoading weights: 100%|██████████| 57/57 [00:00<00:00, 25261.55it/s]\n"
)
FUTURE_ARG = (
    "/work/democlone2/.venv/lib/python3.11/site-packages/transformers/training_args.py:1541: FutureWarning: "
    "`gradient_checkpointing` is deprecated and will be removed in v6. Use `activation_checkpointing` instead.\n"
    '  warnings.warn(f"`{old}` is deprecated and will be removed in v6. Use `{new}` instead.", FutureWarning)\n'
)
FUTURE_PROPERTY = (
    "/work/democlone2/.venv/lib/python3.11/site-packages/transformers/modeling_utils.py:3314: FutureWarning: "
    "`is_gradient_checkpointing` is deprecated and will be removed in v6. Use `is_activation_checkpointing` instead.\n"
    "  warnings.warn(\n"
)
# a worker's warning written while another worker's bar was half drawn (review run, notebook 04)
BAR_THEN_WARNING = (
    "\rLoading weights:   0%|          | 0/33 [00:00<?, ?it/s]"
    "/work/review2/.venv/lib/python3.11/site-packages/transformers/modeling_utils.py:3314: FutureWarning: "
    "`is_gradient_checkpointing` is deprecated and will be removed in v6. Use `is_activation_checkpointing` instead.\n"
    "  warnings.warn(\n"
    "\rLoading weights: 100%|██████████| 33/33 [00:00<00:00, 6312.98it/s]\n"
)
KERNEL_SHUTDOWN_INTERRUPT = "[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.\n"
NOISE = [KERNEL_TCP, KERNEL_SHUTDOWN_INTERRUPT, KERNELS_TRUST, KERNELS_OFFLINE, LOADING_BAR, FUTURE_ARG, FUTURE_PROPERTY, BAR_THEN_WARNING]

# what a user needs, from the same logs, and errors that mention the noise patterns
RUNNER = "[4/8] 04_cmarl_curriculum (profile demo, budget 13.0 min) ...\n"
DONE = "    04_cmarl_curriculum done in 490.0 s\n"
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/work/x/.venv/lib/python3.11/site-packages/bitsandbytes/backends/cpu/ops.py", line 248, in <module>\n'
    '    gemm_4bit_forward_kernel = get_kernel("kernels-community/quantization-bitsandbytes", version=1)\n'
    "RuntimeError: cannot reach kernels-community/quantization-bitsandbytes without encryption\n"
)
WARNING_AS_ERROR = (
    "Traceback (most recent call last):\n"
    '  File "/work/x/mmed/rl/grpo.py", line 274, in train_grpo\n'
    "FutureWarning: `gradient_checkpointing` is deprecated and will be removed in v6.\n"
)
USER_WARNING = (
    "/work/x/mmed/eval/metrics.py:88: UserWarning: 3 of 24 items had no valid answer\n"
    "  warnings.warn(\n"
)


def run(text: str, step: int | None = None) -> str:
    """The filter's whole output for ``text`` fed in pieces of ``step`` characters (None: at once)."""
    f = NoiseFilter()
    step = step or len(text) or 1
    return "".join(f.feed(text[i : i + step]) for i in range(0, len(text), step)) + f.flush()


@pytest.mark.parametrize("noise", NOISE, ids=["kernel-tcp", "kernel-shutdown-interrupt", "kernels-trust", "kernels-offline", "loading-bar",
                                              "future-argument", "future-property", "bar-then-warning"])
@pytest.mark.parametrize("step", [None, 1, 7])
def test_noise_is_dropped_between_the_lines_a_user_needs(noise, step):
    assert run(RUNNER + noise + DONE, step) == RUNNER + DONE


@pytest.mark.parametrize("kept", [TRACEBACK, WARNING_AS_ERROR, USER_WARNING], ids=["traceback", "warning-as-error",
                                                                                   "user-warning"])
@pytest.mark.parametrize("step", [None, 1, 7])
def test_errors_tracebacks_and_other_warnings_are_kept_whole(kept, step):
    assert run(RUNNER + kept + DONE, step) == RUNNER + kept + DONE
    # also right after a dropped FutureWarning, whose indented source line alone goes
    assert run(FUTURE_ARG + kept, step) == kept


def test_a_whole_demo_log_keeps_every_line_but_the_noise():
    noisy = RUNNER + "".join(NOISE) + USER_WARNING + KERNEL_TCP + TRACEBACK + LOADING_BAR + DONE
    assert run(noisy) == RUNNER + USER_WARNING + TRACEBACK + DONE


def test_another_progress_bar_is_shown_live_and_a_line_when_it_ends():
    f = NoiseFilter()
    assert f.feed("\r  3/10 [00:02<00:05, 1.2it/s, reward=0.5]") == "\r  3/10 [00:02<00:05, 1.2it/s, reward=0.5]"
    assert f.feed("\r  4/10 [00:03<00:04") == "\r  4/10 [00:03<00:04"  # shown at once, even unfinished
    assert f.feed("\rLoading wei") == ""  # may still become a noise bar: held
    assert f.feed("ghts:   0%|          | 0/57 [00:00<?, ?it/s]") == ""
    assert f.feed("step 4 of 10 done") == ""  # a line is shown when it ends
    assert f.feed("\n") == "step 4 of 10 done\n"
    assert f.feed("last words") == "" and f.flush() == "last words"
