"""The pool file's optional evidence block: checked when the pool loads, kept as it is otherwise."""

import json

import pytest

from routing.errors import PoolFileError
from routing.pool import load_pool

GOOD = {"ratings": {"source": "s", "name": "a", "categories": {"full": [1300, 1290.5, 1310]}},
        "list_price": {"input_usd_per_mtok": 0.5, "output_usd_per_mtok": 2, "source": "u"},
        "benchmarks": {"mmlu": 0.8}}


def pool_file(tmp_path, evidence, **more):
    model = {"id": "m1", "provider": "openrouter", "model_name": "x/m1", **more}
    if evidence is not ...:
        model["evidence"] = evidence
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"models": [model]}), encoding="utf-8")
    return path


def test_a_good_block_is_kept_with_its_unknown_keys(tmp_path):
    [spec] = load_pool(pool_file(tmp_path, GOOD)).models
    assert spec.evidence == GOOD
    assert spec.to_dict()["evidence"] == GOOD


def test_no_block_or_null_is_none(tmp_path):
    assert load_pool(pool_file(tmp_path, ...)).models[0].evidence is None
    assert load_pool(pool_file(tmp_path, None)).models[0].evidence is None


def test_an_unknown_model_block_loads(tmp_path):
    block = {"ratings": None, "unknown": True, "note": "no public rating matched x/m1"}
    assert load_pool(pool_file(tmp_path, block)).models[0].evidence == block


def test_evidence_does_not_take_part_in_equality(tmp_path):
    a = load_pool(pool_file(tmp_path, GOOD)).models[0]
    b = load_pool(pool_file(tmp_path, ...)).models[0]
    assert a == b and hash(a) == hash(b)


@pytest.mark.parametrize("evidence, message", [
    ([1, 2], "is not an object"),
    ({"ratings": "lmarena"}, "\"ratings\" neither an object nor null"),
    ({"ratings": {"categories": [1, 2, 3]}}, "\"ratings.categories\" that is not an object"),
    ({"ratings": {"categories": {"full": [1300, 1290]}}}, "rates 'full' as [1300, 1290]"),
    ({"ratings": {"categories": {"full": [1300, "1290", 1310]}}}, "three numbers"),
    ({"ratings": {"categories": {"full": [1300, 1290, True]}}}, "three numbers"),
    ({"ratings": {"categories": {"coding": [1300, 1310, 1320]}}}, "low <= rating <= high"),
    ({"list_price": 3}, "\"list_price\" that is not an object"),
    ({"list_price": {"input_usd_per_mtok": -1}}, "list_price.input_usd_per_mtok -1"),
])
def test_a_bad_block_names_the_file_and_the_model(tmp_path, evidence, message):
    path = pool_file(tmp_path, evidence)
    with pytest.raises(PoolFileError) as err:
        load_pool(path)
    assert message in str(err.value)
    assert str(path) in str(err.value) and "'m1'" in str(err.value)
