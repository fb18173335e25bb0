"""The line each notebook opens with (mmed/notebook_guide.py): what it needs, from the
profile and the data folder, and how long it takes, from ``budgets_min``."""

from __future__ import annotations

import pytest

from mmed.config import load_profile
from mmed.notebooks import NOTEBOOK_NEEDS, NotebookContext, list_notebooks, notebook_needs, notebook_requirements

DEMO = load_profile("demo")


def test_demo_04_states_the_profiles_budget_and_the_cold_start_of_notebook_02():
    line = notebook_requirements(DEMO, "04_cmarl_curriculum")
    assert DEMO.budgets_min["04"] == 10 and DEMO.budgets_hardware == "2 CPU cores"
    assert line.startswith("**Needs:** CPU, the tiny model built offline")
    assert "**Takes:** a budget of 10 min on 2 CPU cores (profile `demo`, `budgets_min`)." in line
    assert ("reads the attending cold start (`attending/sft/`) and its image-only reference (`attending/image_only/`, "
            "the seed table's *C-MARL vs image only* row) of notebook 02 (trained here if missing)") in line
    assert "simulated specialists (no endpoint, no API key)" in line
    assert "\n" not in line  # one line


def test_the_budget_follows_the_profile_not_a_typed_number():
    fast = load_profile("demo", overrides={"budgets_min": {"04": 2.5}, "budgets_hardware": "one GPU"})
    assert "**Takes:** a budget of 2.5 min on one GPU (profile `demo`, `budgets_min`)." in notebook_requirements(fast, "04")
    smoke = notebook_requirements("smoke", "08")
    assert "a budget of 1.5 min on 2 CPU cores (profile `smoke`" in smoke
    paper = notebook_requirements("paper", "04")
    assert '**Takes:** no budget in profile `paper` (`budgets_min` lists no "04").' in paper


def test_openai_backend_names_its_endpoint_and_key_variable_never_the_key(monkeypatch):
    prof = load_profile("demo", overrides={"specialists": {"backend": "openai", "openai": {
        "model": "Qwen/Qwen2.5-VL-7B-Instruct", "base_url": "http://127.0.0.1:8000/v1", "api_key_env": "MMED_TEST_KEY"}}})
    monkeypatch.delenv("MMED_TEST_KEY", raising=False)
    line = notebook_requirements(prof, "05")
    assert ("specialists `Qwen/Qwen2.5-VL-7B-Instruct` at `http://127.0.0.1:8000/v1`, "
            "API key in `$MMED_TEST_KEY` (not set here)") in line
    monkeypatch.setenv("MMED_TEST_KEY", "sk-do-not-print")
    line = notebook_requirements(prof, "05")
    assert "API key in `$MMED_TEST_KEY` (set here)" in line and "sk-do-not-print" not in line
    no_key = load_profile("demo", overrides={"specialists": {"backend": "openai", "openai": {"api_key_env": ""}}})
    assert "specialists `gpt-4o` at OpenAI's API, no API key" in notebook_requirements(no_key, "02")
    # the paper profile: OpenAI's own API with OPENAI_API_KEY, a GPU and the 7B model from the Hub
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    paper = notebook_requirements("paper", "03")
    assert paper.startswith("**Needs:** a CUDA GPU, `Qwen/Qwen2.5-VL-7B-Instruct` from the Hugging Face Hub (4-bit: bitsandbytes)")
    assert "specialists `gpt-4o` at OpenAI's API, API key in `$OPENAI_API_KEY` (not set here)" in paper


def test_without_data_root_it_says_what_is_skipped(tmp_path):
    assert ("no real data found (`data_root`, default `../shared/data`): synthetic set only; "
            "the VQA-RAD and triage-image sections are skipped") in notebook_requirements(DEMO, "01", None)
    assert "synthetic items only (`vqa_rad:mevf` skipped)" in notebook_requirements(DEMO, "05", None)
    assert "trains and evaluates on synthetic images only" in notebook_requirements(DEMO, "03", None)
    # with a data folder: what it adds, and the folder
    line = notebook_requirements(DEMO, "05", tmp_path)
    assert f"real data `{tmp_path}`: evaluates synthetic test items and `vqa_rad:mevf`" in line
    line = notebook_requirements(DEMO, "03", tmp_path)
    assert "trains on the real triage images' train part too" in line  # demo: triage.real_train
    # a folder that does not exist is no data folder
    assert "no real data found" in notebook_requirements(DEMO, "05", tmp_path / "missing")
    # a profile without synthetic evaluation items cannot run its evaluation without data
    assert "cannot run (the profile evaluates on `vqa_rad:mevf`, `slake:official`" in notebook_requirements("paper", "06")
    # notebook 04 trains on the synthetic set in demo: the data folder changes nothing
    assert "not used (C-MARL trains on the synthetic set)" in notebook_requirements(DEMO, "04", tmp_path)
    assert "· no real data ·" in notebook_requirements(DEMO, "08", tmp_path)


def test_reads_follow_the_profile_cold_start():
    """Without a cold start (``paper``) notebooks 03-05 read none from notebook 02."""
    assert "reads no earlier notebook" in notebook_requirements("paper", "04")
    assert "reads triage GRPO of notebook 03, C-MARL stages and variants of notebook 04" in notebook_requirements("paper", "05")
    assert "reads cold starts of notebook 02, triage GRPO of notebook 03" in notebook_requirements(DEMO, "05")


@pytest.mark.parametrize("bad", ["09", "4", "04_wrong", "", "notebooks/99_x.ipynb"])
def test_unknown_notebook_is_a_value_error_naming_it(bad):
    with pytest.raises(ValueError, match="unknown notebook .*known: 01_data, 02_consultation_and_stratification"):
        notebook_requirements(DEMO, bad)


def test_notebook_names_accepted():
    for name in ("04", "04_cmarl_curriculum", "04_cmarl_curriculum.ipynb", "notebooks/04_cmarl_curriculum.ipynb"):
        assert notebook_needs(name).stem == "04_cmarl_curriculum"


def test_the_table_covers_exactly_the_notebooks_and_reads_only_earlier_ones():
    assert [n.stem for n in NOTEBOOK_NEEDS.values()] == [p.stem for p in list_notebooks()]
    for key, needs in NOTEBOOK_NEEDS.items():
        assert needs.stem[:2] == key
        assert all(r.notebook < key for r in needs.reads), needs.stem
        assert bool(needs.with_data) == bool(needs.without_data), needs.stem


def test_every_notebook_has_a_line_for_every_profile(tmp_path):
    for profile in ("smoke", "demo", "paper"):
        prof = load_profile(profile)
        for stem in NOTEBOOK_NEEDS.values():
            for root in (None, tmp_path):
                line = notebook_requirements(prof, stem.stem, root)
                assert line.startswith("**Needs:** ") and "**Takes:** " in line and "{" not in line, line


def test_context_requirements_is_the_line_of_its_profile_and_data_root(tmp_path):
    ctx = NotebookContext(DEMO, run=None, data_root=tmp_path, seed=0)
    assert ctx.requirements("06_test_time_scaling") == notebook_requirements(DEMO, "06", tmp_path)
