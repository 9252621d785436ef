"""Every result kgrade writes matches its published JSON Schema."""

from __future__ import annotations

import json

import jsonschema
import pytest
from corpus import Graded

from graders.result import schema_path


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_every_corpus_result_matches_the_schema(
    corpus: dict[str, Graded], validator: jsonschema.Draft202012Validator
) -> None:
    statuses = set()
    for key, graded in corpus.items():
        errors = [e.message for e in validator.iter_errors(graded.result)]
        assert errors == [], key
        statuses.add(graded.result["status"])
    assert {"graded", "ungradable"} <= statuses


def test_a_result_missing_its_status_is_rejected(
    corpus: dict[str, Graded], validator: jsonschema.Draft202012Validator
) -> None:
    broken = dict(next(iter(corpus.values())).result)
    del broken["status"]
    assert not validator.is_valid(broken)
