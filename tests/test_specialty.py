"""Modality -> specialty keyword rules (mmed/data/specialty.py + specialty_rules.yaml)."""

from __future__ import annotations

import json

import pytest

from mmed.data import SPECIALTIES
from mmed.data.specialty import (
    SpecialtyRulesError,
    UnknownModalityError,
    default_rules,
    load_specialty_rules,
    resolve_specialty,
    specialty_for_modality,
)

CASES = [
    # the list of docs/architecture.md#specialties
    ("CT", "Radiologist"), ("MRI", "Radiologist"), ("X-ray", "Radiologist"), ("X-Ray", "Radiologist"),
    ("ultrasound", "Radiologist"), ("PET", "Radiologist"), ("radiology", "Radiologist"),
    ("histology (H&E, colorectal)", "Pathologist"), ("cytology", "Pathologist"), ("microscopy", "Pathologist"),
    ("H&E", "Pathologist"), ("IHC", "Pathologist"), ("histology (IHC, DAB + hematoxylin, colonic glands)", "Pathologist"),
    ("quantitative phase microscopy (single cell)", "Pathologist"),
    ("fundus photography", "Ophthalmologist"), ("OCT", "Ophthalmologist"), ("retina", "Ophthalmologist"),
    ("fundus photography (102x102 crop)", "Ophthalmologist"),
    ("dermoscopy", "Dermatologist"), ("skin photo", "Dermatologist"),
    ("endoscopy", "Surgeon"), ("laparoscopy", "Surgeon"), ("surgical field", "Surgeon"),
    # organ/purpose rules come before the generic imaging rule
    ("thyroid ultrasound", "Endocrinologist"), ("PET (oncology staging)", "Oncologist"),
    ("thyroid cytology", "Pathologist"),
    # spellings from OmniMedVQA's modality_type and MMMU's img_type
    ("CT(Computed Tomography)", "Radiologist"), ("MR (Mag-netic Resonance Imaging)", "Radiologist"),
    ("Microscopy Images", "Pathologist"), ("Fundus Photography", "Ophthalmologist"),
    ("OCT (Optical Coherence Tomography", "Ophthalmologist"), ("Infrared Reflectance Imaging", "Ophthalmologist"),
    ("Body Scans: MRI, CT scans, and X-rays", "Radiologist"), ("Pathological Images", "Pathologist"),
    ("Microscopic Images", "Pathologist"), ("Colposcopy", "Oncologist"), ("Digital Photography", "Dermatologist"),
]


@pytest.mark.parametrize("modality,specialty", CASES)
def test_keyword_rules(modality, specialty):
    assert specialty_for_modality(modality) == specialty


# Modality labels as radiology teaching files write them (MedPix-style "<code> - <name>" labels,
# Radiopaedia-style names): every imaging technique goes to the reader of the modality that
# acquires it, including techniques named after what they show ("Virtual Colonoscopy" is a CT
# examination, read by a radiologist; a colonoscopy is an endoscopy).
TEACHING_FILE_MODALITIES = [
    # CT
    ("CT", "Radiologist"), ("CT - noncontrast", "Radiologist"), ("CT w/contrast (IV)", "Radiologist"),
    ("CTA - CT Angiography", "Radiologist"), ("CT angiography", "Radiologist"),
    # virtual endoscopy: CT (or MR) data rendered as an endoscopic view
    ("Virtual Colonoscopy", "Radiologist"), ("virtual colonoscopy", "Radiologist"),
    ("CT Virtual Colonoscopy", "Radiologist"), ("CT colonography", "Radiologist"),
    ("Virtual endoscopy", "Radiologist"), ("Virtual Bronchoscopy", "Radiologist"),
    # MR sequences
    ("MR - T2 weighted", "Radiologist"), ("T2 FLAIR", "Radiologist"), ("FLAIR", "Radiologist"),
    ("DWI", "Radiologist"), ("MR - DWI Diffusion Weighted", "Radiologist"), ("ADC map", "Radiologist"),
    ("T1-weighted post gadolinium", "Radiologist"), ("T1", "Radiologist"), ("STIR", "Radiologist"),
    ("SWI", "Radiologist"), ("MRA - MR Angiography/Venography", "Radiologist"), ("MRCP", "Radiologist"),
    ("Proton density", "Radiologist"),
    # angiography
    ("Digital subtraction angiography", "Radiologist"), ("DSA", "Radiologist"), ("AN - Angiogram", "Radiologist"),
    ("Venogram", "Radiologist"),
    # nuclear medicine
    ("PET-CT", "Radiologist"), ("PET-CT Fusion", "Radiologist"), ("NM - Nuclear Medicine", "Radiologist"),
    ("bone scintigraphy", "Radiologist"), ("Bone scan", "Radiologist"), ("SPECT", "Radiologist"),
    # ultrasound
    ("Doppler", "Radiologist"), ("US-D - Doppler Ultrasound", "Radiologist"), ("Duplex ultrasound", "Radiologist"),
    # plain film and fluoroscopy
    ("Radiograph", "Radiologist"), ("XR - Plain Film", "Radiologist"), ("Plain film", "Radiologist"),
    ("RF - Fluoroscopy", "Radiologist"), ("BE - Barium Enema", "Radiologist"), ("UGI - Upper GI", "Radiologist"),
    ("Mammography", "Radiologist"),
    # the procedures themselves stay with their readers; a phrase names the more specific technique
    ("Colonoscopy", "Surgeon"), ("Endoscopy", "Surgeon"), ("fluorescein angiography", "Ophthalmologist"),
    ("thyroid Doppler", "Endocrinologist"), ("bone marrow smear", "Pathologist"),
]


@pytest.mark.parametrize("modality,specialty", TEACHING_FILE_MODALITIES)
def test_teaching_file_modalities_go_to_the_reader_of_the_acquiring_modality(modality, specialty):
    assert specialty_for_modality(modality) == specialty


def test_a_longer_keyword_covering_a_shorter_one_wins_whatever_the_rule_order():
    """Precedence: a match lying inside a longer match is dropped (the phrase is more
    specific), then the first rule in order wins."""
    rules = default_rules()
    assert rules.explain("Virtual Colonoscopy") == ("Radiologist", "virtual colonoscopy")  # not Surgeon's "colonoscopy"
    assert rules.explain("fluorescein angiography") == ("Ophthalmologist", "fluorescein angiography")
    # no overlap: rule order decides (organ/purpose readers before the generic imaging rule)
    assert rules.explain("thyroid ultrasound") == ("Endocrinologist", "thyroid")
    assert rules.explain("positron emission tomography (oncology staging)") == ("Oncologist", "oncology")


def test_specificity_also_across_user_and_packaged_files(tmp_path):
    extra = tmp_path / "mine.yaml"
    extra.write_text("rules:\n  - {specialty: Surgeon, keywords: [colonoscopy, ct]}\n")
    rules = load_specialty_rules(extra)
    assert rules.specialty_for("CT") == "Surgeon"  # user rules are tried first
    assert rules.specialty_for("colonoscopy") == "Surgeon"
    assert rules.specialty_for("virtual colonoscopy") == "Radiologist"  # the packaged, more specific phrase


@pytest.mark.parametrize("modality", ["doctor's note", "uterus diagram", "Tables", "", "pectoral"])
def test_whole_words_only_and_unmatched_raises_naming_it(modality):
    # "oct" in "doctor", "us" in "uterus", "ct" in "pectoral" must not match
    with pytest.raises(UnknownModalityError, match=f"modality {modality!r}"):
        specialty_for_modality(modality)


def test_explain_names_the_keyword():
    assert default_rules().explain("Chest CT scan") == ("Radiologist", "ct")
    assert default_rules().explain("thyroid US") == ("Endocrinologist", "thyroid")


def test_given_specialty_wins_and_is_checked():
    assert resolve_specialty("CT", "pathologist") == ("Pathologist", "data")
    assert resolve_specialty("CT", None) == ("Radiologist", "rule")
    assert resolve_specialty("CT", "  ") == ("Radiologist", "rule")
    with pytest.raises(ValueError, match="'Cardiologist' is not one of"):
        resolve_specialty("CT", "Cardiologist")


def test_user_rules_extend_and_take_precedence(tmp_path):
    extra = tmp_path / "mine.yaml"
    extra.write_text(
        "rules:\n"
        "  - {specialty: Surgeon, keywords: [wound photo]}\n"
        "  - {specialty: oncologist, keywords: [PET]}\n"
        "defaults:\n  mmmu_med: {Pharmacy: Oncologist}\n"
    )
    rules = load_specialty_rules(extra)
    assert rules.specialty_for("wound photo, left leg") == "Surgeon"
    assert rules.specialty_for("PET") == "Oncologist"  # tried before the packaged rules
    assert rules.specialty_for("CT") == "Radiologist"  # packaged rules still apply
    assert rules.default_for("mmmu_med", "Pharmacy") == "Oncologist"
    assert rules.default_for("mmmu_med", "Public_Health") == "Endocrinologist"  # packaged default kept
    assert rules.default_for("slake", "x") is None
    with pytest.raises(UnknownModalityError):
        load_specialty_rules(extra, include_default=False).specialty_for("CT")


@pytest.mark.parametrize(
    "text,match",
    [
        ("rules:\n  - {specialty: Cardiologist, keywords: [ecg]}\n", r"rules\[0\]: specialty 'Cardiologist'"),
        ("rules:\n  - {specialty: Surgeon}\n", r"rules\[0\]: field 'keywords'"),
        ("rules:\n  - {specialty: Surgeon, keywords: [a], typo: 1}\n", r"rules\[0\]: expected keys"),
        ("rulez: []\n", r"unknown top-level key"),
        ("rules: [\n", r"not valid YAML"),
    ],
)
def test_bad_rules_file_names_file_and_rule(tmp_path, text, match):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(SpecialtyRulesError, match=match) as e:
        load_specialty_rules(p)
    assert str(p) in str(e.value)


def test_every_rule_targets_a_specialty_and_covers_the_seven():
    rules = default_rules()
    assert {r.specialty for r in rules.rules} == set(SPECIALTIES)


def test_rules_agree_with_real_triage_labels(triage_root):
    """Every real triage row's modality string maps to the specialty its folder gives."""
    n = 0
    for f in sorted(triage_root.rglob("labels.jsonl")):
        for line in f.read_text().splitlines():
            row = json.loads(line)
            assert specialty_for_modality(row["modality"]) == row["specialty"], (f, row["image"])
            n += 1
    assert n == 253
