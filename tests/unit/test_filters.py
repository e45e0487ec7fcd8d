"""Profile filters: type rules, save-time validation and evaluation (contract §3b)."""

from __future__ import annotations

from typing import Any

import pytest
from callbacks.filters import passes, value_text
from callbacks.models.profiles import Filter, ProfileSpec
from callbacks.validation import (
    MAX_FILTER_VALUE_CHARS,
    MAX_FILTER_VALUES,
    MAX_FILTERS,
    validate_profile,
)
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

RECEIPT = {"status": "failed", "to": "+919876543210", "units": 2, "custom": {"b": 1, "a": "é"}}


def rule(**fields: Any) -> Filter:
    return Filter.model_validate(fields)


@pytest.mark.parametrize(
    ("fields", "holds"),
    [
        ({"variable": "status", "in": ["failed", "undelivered"]}, True),
        ({"variable": "status", "in": ["delivered"]}, False),
        ({"variable": "status", "in": ["FAILED"]}, False),  # exact, case-sensitive
        ({"variable": "status", "not_in": ["delivered", "sent"]}, True),
        ({"variable": "status", "not_in": ["failed"]}, False),
        ({"variable": "status", "equals": "failed"}, True),
        ({"variable": "status", "equals": "failed "}, False),
        ({"variable": "units", "equals": "2"}, True),  # a number compares as JSON text
        ({"variable": "units", "in": ["1", "2"]}, True),
        ({"variable": "custom", "equals": '{"a":"é","b":1}'}, True),  # sorted, compact
        ({"variable": "to", "exists": True}, True),
        ({"variable": "error_code", "exists": True}, False),
        ({"variable": "error_code", "exists": False}, True),
        ({"variable": "empty", "exists": True}, False),  # "" is not there
        ({"variable": "nothing", "exists": True}, False),  # null is not there
        ({"variable": "error_code", "in": ["x"]}, False),  # absent: never in
        ({"variable": "error_code", "not_in": ["x"]}, True),  # absent: always not in
        ({"variable": "nothing", "equals": "null"}, False),  # null has no text
        ({"variable": "flag", "equals": "true"}, True),
    ],
)
def test_one_filter(fields: dict[str, Any], holds: bool) -> None:
    variables = {**RECEIPT, "empty": "", "nothing": None, "flag": True}
    assert passes([rule(**fields)], variables) is holds


def test_every_filter_must_hold_and_none_means_every_event() -> None:
    assert passes([], RECEIPT)
    both = [rule(variable="status", equals="failed"), rule(variable="to", exists=True)]
    assert passes(both, RECEIPT)
    assert not passes([*both, rule(variable="units", in_=["3"])], RECEIPT)


@pytest.mark.parametrize(
    "fields",
    [
        {"variable": "status"},
        {"variable": "status", "in": ["a"], "equals": "a"},
        {"variable": "status", "in": ["a"], "not_in": ["b"]},
        {"variable": "status", "exists": True, "equals": "a"},
        {"variable": "status", "in": "failed"},
        {"variable": "status", "equals": 3},
        {"variable": "status", "in": ["a"], "regex": ".*"},
    ],
)
def test_a_filter_has_exactly_one_known_operator(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Filter.model_validate(fields)


def test_round_trip_keeps_the_json_names() -> None:
    written = [{"variable": "status", "in": ["failed"]}, {"variable": "to", "exists": False}]
    spec = ProfileSpec.model_validate(
        {"title": "t", "url": "https://example.com/", "filters": written}
    )
    assert spec.model_dump(mode="json")["filters"] == written
    assert ProfileSpec.model_validate_json(spec.model_dump_json()) == spec


def _sms(filters: list[dict[str, Any]]) -> ProfileSpec:
    return ProfileSpec.model_validate(
        {
            "title": "t",
            "channel": "sms",
            "events": ["sms.send"],
            "url": "https://example.com/",
            "filters": filters,
        }
    )


@pytest.mark.parametrize(
    ("filters", "field", "message"),
    [
        ([{"variable": "subject", "equals": "x"}], "filters.0.variable", "unknown variable"),
        (
            [{"variable": "status", "in": ["failed"]}, {"variable": "wamid", "exists": True}],
            "filters.1.variable",
            "valid variables:",
        ),
        ([{"variable": "status", "in": []}], "filters.0.in", "at least one"),
        ([{"variable": "status", "not_in": []}], "filters.0.not_in", "at least one"),
        (
            [{"variable": "status", "in": ["x"] * (MAX_FILTER_VALUES + 1)}],
            "filters.0.in",
            f"at most {MAX_FILTER_VALUES}",
        ),
        (
            [{"variable": "status", "in": ["x" * (MAX_FILTER_VALUE_CHARS + 1)]}],
            "filters.0.in",
            f"{MAX_FILTER_VALUE_CHARS} characters",
        ),
        (
            [{"variable": "status", "equals": "x" * (MAX_FILTER_VALUE_CHARS + 1)}],
            "filters.0.equals",
            "characters",
        ),
        (
            [{"variable": "status", "exists": True}] * (MAX_FILTERS + 1),
            "filters",
            f"at most {MAX_FILTERS}",
        ),
        ([{"variable": "s" * 300, "exists": True}], "filters.0.variable", "characters"),
    ],
)
def test_save_time_rules(filters: list[dict[str, Any]], field: str, message: str) -> None:
    errors = validate_profile(_sms(filters))
    assert [e.field for e in errors] == [field], errors
    assert message in errors[0].message


def test_filters_on_catalog_variables_are_valid() -> None:
    filters = [
        {"variable": "status", "in": ["failed", "undelivered"]},
        {"variable": "dlr_status", "not_in": ["DELIVRD"]},
        {"variable": "ref", "equals": "order_123"},  # an envelope variable
        {"variable": "error_code", "exists": True},
    ]
    assert validate_profile(_sms(filters)) == []


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@given(value=_json, values=st.lists(st.text(max_size=5), min_size=1, max_size=5))
def test_in_and_not_in_are_complements_for_a_present_value(value: Any, values: list[str]) -> None:
    variables = {"v": value}
    inside = passes([rule(variable="v", **{"in": values})], variables)
    outside = passes([rule(variable="v", not_in=values)], variables)
    assert inside != outside
    assert inside == (value_text(value) in values)


@given(variables=st.dictionaries(st.text(max_size=8), _json, max_size=8), name=st.text(max_size=8))
def test_exists_splits_every_input_in_two(variables: dict[str, Any], name: str) -> None:
    there = passes([rule(variable=name, exists=True)], variables)
    assert there != passes([rule(variable=name, exists=False)], variables)
