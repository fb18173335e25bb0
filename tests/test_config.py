import pytest

from mmed.config import ProfileError, available_profiles, load_profile, profile_from_dict


def test_shipped_profiles_load_and_validate():
    assert {"smoke", "demo", "paper"} <= set(available_profiles())
    smoke, demo, paper = (load_profile(n) for n in ("smoke", "demo", "paper"))
    assert smoke.models.triage == "tiny" and demo.models.attending == "tiny"
    assert paper.models.triage == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert paper.models.quantization == "nf4"
    assert paper.specialists.backend == "openai"
    # demo's default entropy schedule grows with difficulty (paper §4.2)
    g_easy, g_medium, g_hard = (s.entropy_coef for s in demo.curriculum.stages)
    assert g_easy == 0.0 < g_medium < g_hard <= 0.005  # the paper's shape at public GRPO recipes' scale
    assert [s.strata for s in demo.curriculum.stages] == [["easy"], ["medium"], ["hard"]]
    # tiny models keep every hidden size a multiple of 64 (bitsandbytes on CPU, docs/architecture.md#environment-facts)
    for p in (smoke, demo):
        t = p.models.tiny
        for v in (t.hidden_size, t.intermediate_size, t.vision_hidden_size, t.vision_intermediate_size):
            assert v % 64 == 0


@pytest.mark.parametrize("name", ["smoke", "demo", "paper"])
def test_every_variant_loads(name):
    raw = load_profile(name)
    for v in raw.variants:
        p = load_profile(name, variant=v)
        assert p.variant == v
        assert p.variants == raw.variants


def test_variant_overlay_values():
    p = load_profile("demo", variant="reverse")
    assert [s.name for s in p.curriculum.stages] == ["hard", "medium", "easy"]
    base = [s.entropy_coef for s in load_profile("demo").curriculum.stages]
    assert [s.entropy_coef for s in p.curriculum.stages] == base[::-1]  # each stage keeps its γ
    nc = load_profile("demo", variant="no_curriculum")
    assert nc.curriculum.shuffle_strata is True
    assert sum(s.max_steps for s in nc.curriculum.stages) == sum(
        s.max_steps for s in load_profile("demo").curriculum.stages
    )


def test_unknown_key_names_file_and_key():
    with pytest.raises(ProfileError, match=r"demo\.yaml.*'models\.tinyy'"):
        load_profile("demo", overrides={"models": {"tinyy": 1}})


def test_unknown_profile_and_variant():
    with pytest.raises(ProfileError, match="known"):
        load_profile("nope")
    with pytest.raises(ProfileError, match="unknown variant 'x'"):
        load_profile("demo", variant="x")


def test_wrong_types_and_values():
    with pytest.raises(ProfileError, match="'seed' must be an integer"):
        profile_from_dict({"seed": "one"})
    with pytest.raises(ProfileError, match="specialists.backend"):
        profile_from_dict({"specialists": {"backend": "gpt"}})
    with pytest.raises(ProfileError, match="timeout_s"):
        profile_from_dict({"specialists": {"openai": {"timeout_s": None}}})
    with pytest.raises(ProfileError, match="num_generations"):
        profile_from_dict({"triage_grpo": {"per_device_train_batch_size": 6, "num_generations": 4}})
    with pytest.raises(ProfileError, match=r"curriculum.stages\[0\].strata"):
        profile_from_dict({"curriculum": {"stages": [{"name": "x", "strata": ["trivial"]}]}})


def test_bad_variant_key_is_caught_even_when_unused():
    with pytest.raises(ProfileError, match="variant 'v'.*'curriculum.bogus'"):
        profile_from_dict({"variants": {"v": {"curriculum": {"bogus": 1}}}})


def test_triage_fallback_key():
    assert [load_profile(n).triage.fallback for n in ("smoke", "demo", "paper")] == ["random"] * 3
    assert load_profile("smoke", overrides={"triage": {"fallback": "Radiologist"}}).triage.fallback == "Radiologist"
    with pytest.raises(ProfileError, match=r"smoke\.yaml.*: key 'triage\.fallback' is 'Nurse', expected 'random' or one of"):
        load_profile("smoke", overrides={"triage": {"fallback": "Nurse"}})
    with pytest.raises(ProfileError, match=r"'triage\.fallback' must be a string"):
        profile_from_dict({"triage": {"fallback": 3}})


def test_benchmark_entries_may_name_their_split():
    from mmed.data.specs import parse_benchmark_spec

    assert parse_benchmark_spec("vqa_rad:mevf") == ("vqa_rad", "mevf", None)
    assert parse_benchmark_spec("vqa_rad") == ("vqa_rad", None, None)
    assert parse_benchmark_spec("mmmu_med:hub@validation") == ("mmmu_med", "hub", "validation")
    assert parse_benchmark_spec("slake@val") == ("slake", None, "val")
    with pytest.raises(ValueError, match=r"'vqa_rad:mevf@validation': no split 'validation' for vqa_rad:mevf; known: train, test"):
        parse_benchmark_spec("vqa_rad:mevf@validation")
    # the paper profile evaluates MMMU on validation (its test split has no public answers)
    paper = load_profile("paper")
    assert paper.data.eval_split == "test" and "mmmu_med:hub@validation" in paper.data.eval_benchmarks
    # without the split, MMMU on eval_split test is refused when the profile loads, naming the entry
    with pytest.raises(ProfileError, match=r"paper\.yaml.*key 'data\.eval_benchmarks\[0\]' is 'mmmu_med:hub': it is read on "
                                           r"data\.eval_split, but no split 'test' for mmmu_med:hub .*'mmmu_med:hub@validation'"):
        load_profile("paper", overrides={"data": {"eval_benchmarks": ["mmmu_med:hub"]}})
    with pytest.raises(ProfileError, match=r"key 'data\.eval_benchmarks\[1\]' is 'slake@tset': no split 'tset' for slake"):
        load_profile("smoke", overrides={"data": {"eval_benchmarks": ["vqa_rad:mevf", "slake@tset"]}})
    with pytest.raises(ProfileError, match=r"key 'data\.eval_benchmarks\[0\]' is 'vqa_rad@': .*ends in '@'"):
        load_profile("smoke", overrides={"data": {"eval_benchmarks": ["vqa_rad@"]}})
    # training entries are read on train: no suffix, and a benchmark without a train split is refused
    with pytest.raises(ProfileError, match=r"key 'data\.train_benchmarks\[0\]' is 'slake@test': .*drop the '@<split>'"):
        load_profile("smoke", overrides={"data": {"train_benchmarks": ["slake@test"]}})
    with pytest.raises(ProfileError, match=r"key 'data\.train_benchmarks\[0\]' is 'omnimedvqa': no split 'train'"):
        load_profile("smoke", overrides={"data": {"train_benchmarks": ["omnimedvqa"]}})
    # one entry per benchmark, with or without a split
    with pytest.raises(ProfileError, match=r"names \['vqa_rad'\] more than once"):
        load_profile("smoke", overrides={"data": {"eval_benchmarks": ["vqa_rad:mevf", "vqa_rad@train"]}})
