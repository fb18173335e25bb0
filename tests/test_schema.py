import PIL.Image
import pytest

from mmed.data import SPECIALTIES, Item, SchemaError, closed_only, item_meta, items_to_dataset, option_letter


def _img():
    return PIL.Image.new("RGB", (8, 8), (10, 20, 30))


def _item(**kw):
    base = dict(
        id="x/1", dataset="x", split="test", images=[_img()], image_ref="a.png", question="Is it?",
        options=["yes", "no"], answer_idx=0, answer="yes", answer_type="closed",
        modality="CT", specialty="Radiologist", organ="HEAD", meta={"k": 1},
    )
    base.update(kw)
    return Item(**base)


def test_roundtrip_through_dataset():
    ds = items_to_dataset([_item(), _item(id="x/2", options=[], answer_idx=-1, answer="lung", answer_type="open")])
    assert ds.column_names == list(Item.__dataclass_fields__)
    row = ds[0]
    assert row["images"][0].size == (8, 8)
    assert item_meta(row) == {"k": 1}
    back = Item.from_row(row)
    assert back.options == ["yes", "no"] and back.meta == {"k": 1}
    assert len(closed_only(ds)) == 1


@pytest.mark.parametrize(
    "kw,field",
    [
        (dict(answer_type="CLOSED"), "answer_type"),
        (dict(specialty="Cardiologist"), "specialty"),
        (dict(answer_idx=2), "answer_idx"),
        (dict(answer="no"), "answer"),
        (dict(options=["yes"]), "options"),
        (dict(answer_type="open"), "open item"),
        (dict(images=[]), "images"),
    ],
)
def test_invalid_items_name_id_and_field(kw, field):
    with pytest.raises(SchemaError, match=f"item 'x/1'.*{field}"):
        _item(**kw).validate()


def test_duplicate_ids_rejected():
    with pytest.raises(SchemaError, match="duplicate item id 'x/1'"):
        items_to_dataset([_item(), _item()])


def test_letters_and_specialties():
    assert option_letter(0) == "A" and option_letter(3) == "D"
    with pytest.raises(ValueError):
        option_letter(26)
    assert len(SPECIALTIES) == 7 and len(set(SPECIALTIES)) == 7
