"""The line every notebook opens with: what it needs and how long it takes.

:func:`notebook_requirements` builds one Markdown line for a numbered notebook from

- the profile: its ``device``, its policy models (``models.triage`` / ``models.attending``,
  ``models.quantization``), its specialist backend (``specialists.backend`` and, for
  ``openai``, the endpoint, the model and the environment variable holding the API key),
  its data (synthetic items, ``data.eval_benchmarks``, ``data.train_benchmarks``), whether
  it cold-starts the agents (``cold_start.enabled``) and the notebook's time budget
  (``budgets_min["<nn>"]``, the budget :func:`mmed.notebooks.run_notebooks` reports a
  notebook over, on the machine ``budgets_hardware`` names);
- the real-data folder the notebook found (``NotebookContext.data_root``: ``../shared/data``
  or ``$MMED_DATA_ROOT``; None when there is none);
- :data:`NOTEBOOK_NEEDS`, the one table of what each notebook uses and which earlier
  notebooks' outputs it reads (notebook 04 reads the attending's cold start that notebook
  02 trains, and trains it itself when the run lacks it).

Every notebook displays it right after resolving its context,
``display(Markdown(ctx.requirements("04_cmarl_curriculum")))``
(:meth:`mmed.notebooks.NotebookContext.requirements`), so nothing in it is typed in a
notebook: another profile, another line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple


class Reads(NamedTuple):
    """An earlier notebook's output that a notebook reads."""

    notebook: str  #: the earlier notebook's two-digit prefix
    what: str  #: what it reads, e.g. "the attending's cold start (`attending/sft/`)"
    cold_start: bool = False  #: only read when the profile cold-starts the agents (``cold_start.enabled``)
    #: only read when this profile setting has this value: ``("curriculum.strata_panel", "triage")``
    when: tuple[str, Any] | None = None

    def applies(self, profile: Any) -> bool:
        """Whether a notebook reads this under ``profile`` (a loaded :class:`mmed.config.Profile`)."""
        if self.cold_start and not profile.cold_start.enabled:
            return False
        if self.when is not None:
            value: Any = profile
            for part in self.when[0].split("."):
                value = getattr(value, part)
            return value == self.when[1]
        return True


@dataclass(frozen=True)
class NotebookNeeds:
    """What one numbered notebook uses beyond its profile.

    Attributes:
        stem: the notebook's file name without ``.ipynb`` (``"04_cmarl_curriculum"``).
        models: whether it loads the policy models and consults the specialist panel:
            True, False, or the condition under which it does (``"if …"``).
        reads: the earlier notebooks' outputs it reads (:class:`Reads`); empty: none.
        missing: what it does when those outputs are not in the run.
        with_data: what the real-data folder adds (``{field}`` names of
            :func:`_data_facts`, filled from the profile); empty: no real data is used.
        without_data: what it does without the real-data folder (same fields).
        note: anything else it needs (one short clause), or empty.
    """

    stem: str
    models: bool | str
    reads: tuple[Reads, ...] = ()
    missing: str = ""
    with_data: str = ""
    without_data: str = ""
    note: str = ""


#: What each notebook needs, keyed by its two-digit prefix (the key of ``budgets_min``),
#: from what the notebooks and the library calls they make do: notebooks 03 and 04 reuse
#: the cold starts notebook 02 trains (``mmed.rl.cold_start.ensure_cold_start`` trains one the
#: run lacks); notebook 05 evaluates the weights the run holds
#: (``mmed.eval.ablations.run_ablations``: a row whose weights are missing is listed as
#: unavailable); notebook 06 samples the run's latest attending and skips a variant the
#: run lacks (``mmed.eval.tts.run_test_time_scaling``); notebook 07 browses the run's
#: ``predictions.jsonl`` files (``mmed.viz.inspector.find_predictions``: written by
#: ``mmed.consult.consult`` and the ablations).
NOTEBOOK_NEEDS: dict[str, NotebookNeeds] = {
    "01": NotebookNeeds(
        "01_data", models=False,
        with_data="VQA-RAD (layouts, multiple choice, leakage) and the real triage images",
        without_data="synthetic set only; the VQA-RAD and triage-image sections are skipped"),
    "02": NotebookNeeds(
        "02_consultation_and_stratification", models=True,
        with_data="{cold_start_real}consults {eval_benchmarks}",
        without_data="{without_eval_benchmarks}",
        note="`transformers serve` on a loopback port for its last section (`show_local_server = False` skips it)"),
    "03": NotebookNeeds(
        "03_triage_grpo", models=True,
        reads=(Reads("02", "the triage cold start (`triage/sft/`)", cold_start=True),),
        missing="trained here if missing",
        with_data="{triage_real}",
        without_data="trains and evaluates on synthetic images only"),
    "04": NotebookNeeds(
        "04_cmarl_curriculum", models=True,
        reads=(Reads("02", "the attending cold start (`attending/sft/`) and its image-only reference "
                          "(`attending/image_only/`, the seed table's *C-MARL vs image only* row)", cold_start=True),
               Reads("03", "the trained triage, which routes the stratification panels",
                     when=("curriculum.strata_panel", "triage"))),
        missing="trained here if missing",
        with_data="{curriculum_real}",
        without_data="{curriculum_without}"),
    "05": NotebookNeeds(
        "05_ablations", models=True,
        reads=(Reads("02", "cold starts", cold_start=True), Reads("03", "triage GRPO"),
               Reads("04", "C-MARL stages and variants")),
        missing="a row whose weights the run lacks is listed as unavailable",
        with_data="evaluates {eval_sets}",
        without_data="{without_eval_benchmarks}"),
    "06": NotebookNeeds(
        "06_test_time_scaling", models=True,
        reads=(Reads("02", "the cold starts", cold_start=True), Reads("03", "triage GRPO"),
               Reads("04", "C-MARL attending and `no_curriculum` variant")),
        missing="missing cold starts are trained here; without 04 it samples the latest attending the run holds",
        with_data="evaluates {eval_sets}",
        without_data="{without_eval_benchmarks}"),
    "07": NotebookNeeds(
        "07_disagreement_inspector", models="only if the run holds no predictions yet (a small consultation)",
        reads=(Reads("02", "consultations"), Reads("05", "ablation predictions")),
        missing="a small consultation of `fallback_limit` items if there are none",
        with_data="real items' images are shown",
        without_data="real items' images show as placeholders"),
    "08": NotebookNeeds("08_curriculum_theory", models=False, note="numpy only"),
}


def notebook_needs(notebook: str) -> NotebookNeeds:
    """The :data:`NOTEBOOK_NEEDS` entry of a notebook.

    Args:
        notebook: its two-digit prefix (``"04"``), its stem (``"04_cmarl_curriculum"``) or
            its file name or path (``"notebooks/04_cmarl_curriculum.ipynb"``).
    Raises:
        ValueError: no numbered notebook of that name (the known stems are listed).
    """
    name = Path(str(notebook)).name
    name = name[: -len(".ipynb")] if name.endswith(".ipynb") else name
    needs = NOTEBOOK_NEEDS.get(name[:2])
    if needs is None or (len(name) > 2 and name != needs.stem):
        known = ", ".join(n.stem for n in NOTEBOOK_NEEDS.values())
        raise ValueError(f"unknown notebook {notebook!r}; known: {known} (or their two-digit prefixes)")
    return needs


def _specs(specs: list[str]) -> str:
    return ", ".join(f"`{s}`" for s in specs)


def _data_facts(profile: Any) -> dict[str, str]:
    """The profile-dependent words of :data:`NOTEBOOK_NEEDS`' data clauses."""
    d = profile.data
    bench = _specs(list(d.eval_benchmarks))
    synthetic_eval = d.synthetic.n_eval > 0
    sets = [s for s in ("synthetic test items" if synthetic_eval else "", bench) if s]
    if not d.eval_benchmarks:
        without = "nothing changes (the profile evaluates on synthetic items only)"
    elif synthetic_eval:
        without = f"synthetic items only ({bench} skipped)"
    else:
        without = f"cannot run (the profile evaluates on {bench} only)"
    cs = profile.cold_start
    cold_real = cs.enabled and (profile.triage.real_train or (cs.real_share > 0 and (d.cold_start_benchmarks or d.train_benchmarks)))
    if d.train_benchmarks:
        curriculum_real = f"trains C-MARL on {_specs(list(d.train_benchmarks))}"
        curriculum_without = ("synthetic training items only" if d.synthetic.n_train > 0 else
                              "cannot run (the profile trains on real benchmarks only)")
    else:
        curriculum_real = curriculum_without = "not used (C-MARL trains on the synthetic set)"
    return {
        "eval_benchmarks": bench or "no benchmark (`data.eval_benchmarks` is empty)",
        "eval_sets": " and ".join(sets) or "nothing (no synthetic test items, no `data.eval_benchmarks`)",
        "without_eval_benchmarks": without,
        "cold_start_real": "real items in the cold starts; " if cold_real else "",
        "triage_real": ("trains on the real triage images' train part too, evaluates on their held-out part"
                        if profile.triage.real_train else "evaluates on the real triage images (`triage.real_train` off)"),
        "curriculum_real": curriculum_real,
        "curriculum_without": curriculum_without,
    }


def _models(profile: Any) -> str:
    """The device and the policy models."""
    device = {"cpu": "CPU", "cuda": "a CUDA GPU", "auto": "a CUDA GPU if present, else CPU"}.get(
        profile.device, f"device `{profile.device}`")
    m = profile.models
    hub = [n for n in dict.fromkeys([m.triage, m.attending]) if n != "tiny"]
    if not hub:
        model = "the tiny model built offline" + (" (pre-trained once, then cached)" if m.pretrain.enabled else "")
    else:
        model = " and ".join(f"`{n}`" for n in hub) + " from the Hugging Face Hub"
        model += " (4-bit: bitsandbytes)" if m.quantization == "nf4" else ""
    return f"{device}, {model}"


def _specialists(profile: Any) -> str:
    """What the specialist backend needs: nothing, or an endpoint and an API key."""
    s = profile.specialists
    if s.backend == "simulated":
        return "simulated specialists (no endpoint, no API key)"
    if s.backend == "openai":
        o = s.openai
        where = f"`{o.base_url}`" if o.base_url else "OpenAI's API"
        if o.api_key_env:
            key = f"API key in `${o.api_key_env}` ({'set' if os.environ.get(o.api_key_env) else 'not set'} here)"
        else:
            key = "no API key"
        return f"specialists `{o.model}` at {where}, {key}"
    if s.backend == "local":
        return f"specialists from `{s.local_model}`" if s.local_model else "specialists from the run's base model"
    return f"specialists: backend `{s.backend}`"


def _real_data(profile: Any, needs: NotebookNeeds, data_root: Path | None) -> str:
    if not needs.with_data:
        return "no real data"
    facts = _data_facts(profile)
    if data_root is not None:
        return f"real data `{data_root}`: " + needs.with_data.format(**facts)
    return "no real data found (`data_root`, default `../shared/data`): " + needs.without_data.format(**facts)


def _reads(profile: Any, needs: NotebookNeeds) -> str:
    reads = [r for r in needs.reads if r.applies(profile)]
    if not reads:
        return "no earlier notebook"
    by_nb: dict[str, list[str]] = {}
    for r in reads:
        by_nb.setdefault(r.notebook, []).append(r.what)
    what = ", ".join(f"{' and '.join(w)} of notebook {nb}" for nb, w in by_nb.items())
    return f"{what} ({needs.missing})" if needs.missing else what


def _budget(profile: Any, needs: NotebookNeeds) -> str:
    key = needs.stem[:2]
    budget = (profile.budgets_min or {}).get(key)
    if budget is None:
        return f"no budget in profile `{profile.name}` (`budgets_min` lists no \"{key}\")"
    hardware = getattr(profile, "budgets_hardware", None)
    return f"a budget of {budget:g} min{f' on {hardware}' if hardware else ''} (profile `{profile.name}`, `budgets_min`)"


def notebook_requirements(profile: Any, notebook: str, data_root: str | os.PathLike[str] | None = None) -> str:
    """One Markdown line for the top of a notebook: what it needs and how long it takes.

    Args:
        profile: a :class:`mmed.config.Profile`, or a profile name or YAML path
            (:func:`mmed.config.load_profile`).
        notebook: the notebook's two-digit prefix, stem or file name (``"04"``,
            ``"04_cmarl_curriculum"``, ``"04_cmarl_curriculum.ipynb"``).
        data_root: the real-data folder the notebook found (``NotebookContext.data_root``),
            or None when there is none; a path that is not a folder counts as none.
    Returns:
        ``"**Needs:** … **Takes:** …."`` — the device and the policy models (``device``,
        ``models``; "no model" for a notebook that loads none), the specialists
        (``specialists.backend``: the simulated panel needs nothing; ``openai`` names its
        model, endpoint and the environment variable ``specialists.openai.api_key_env``
        with whether it is set, never its value), what the real-data folder adds or what
        the notebook does without it, which earlier notebooks' outputs it reads and what it
        does when they are missing (:data:`NOTEBOOK_NEEDS`), then ``budgets_min["<nn>"]``
        in minutes on ``budgets_hardware`` (or that the profile sets no budget).
    Raises:
        ValueError: an unknown notebook (:func:`notebook_needs`).
        ProfileError: ``profile`` is a name or path that does not load.
    """
    needs = notebook_needs(notebook)
    if isinstance(profile, (str, os.PathLike)):
        from .config import load_profile

        profile = load_profile(profile)
    root = Path(data_root) if data_root is not None else None
    if root is not None and not root.is_dir():
        root = None
    if needs.models is False:
        uses = [f"CPU, no model, no specialists{f' ({needs.note})' if needs.note else ''}"]
    else:
        uses = [_models(profile), _specialists(profile)]
        if isinstance(needs.models, str):
            uses = [f"{' · '.join(uses)} {needs.models}"]
        if needs.note:
            uses.append(needs.note)
    parts = [*uses, _real_data(profile, needs, root), f"reads {_reads(profile, needs)}"]
    return f"**Needs:** {' · '.join(parts)}. **Takes:** {_budget(profile, needs)}."
