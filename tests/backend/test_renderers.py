"""The API's JSON renderer (orjson) writes what DRF's JSONRenderer writes, byte for byte wherever
the two can agree on bytes, and always the same JSON value."""

import json
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest
from django.utils.translation import gettext_lazy
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.renderers import JSONRenderer

from backend.api.renderers import FastJSONRenderer

DRF, FAST = JSONRenderer(), FastJSONRenderer()

# Everything a serializer or a view of this API hands the renderer. Floats are left to the next
# strategy: both write the shortest text that reads back as the same float, but the exponent's
# spelling differs (1e+16 vs 1e16).
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.text(alphabet=st.characters(blacklist_categories=["Cs"]))  # any text but lone surrogates
    | st.datetimes(timezones=st.none() | st.just(UTC) | st.timezones())
    | st.dates()
    | st.times()
    | st.uuids()
    | st.decimals(allow_nan=False, allow_infinity=False, places=2, max_value=10**6, min_value=-(10**6))
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=30,
)


@given(values)
@settings(max_examples=400)
def test_the_same_bytes_as_drf_for_everything_but_floats(value):
    assert FAST.render(value) == DRF.render(value)


@given(
    st.recursive(st.floats(allow_nan=False, allow_infinity=False) | st.integers(-1000, 1000), st.lists, max_leaves=20)
)
def test_floats_read_back_as_the_same_numbers(value):
    assert json.loads(FAST.render(value)) == json.loads(DRF.render(value))


def test_what_only_drfs_encoder_knows_comes_out_as_drf_writes_it():
    value = {
        "utc": datetime(2026, 3, 8, 7, 0, 0, 123456, tzinfo=UTC),  # `Z`, as DRF writes it
        "offset": datetime(2026, 3, 8, 2, 0, tzinfo=timezone(timedelta(hours=-5))),
        "naive": datetime(2026, 3, 8, 2, 0),
        "day": date(2026, 3, 8),
        "wall": time(21, 30),
        "amount": Decimal("2.50"),
        "id": uuid.UUID(int=7),
        "lazy": gettext_lazy("Reported substance use"),
        "waited": timedelta(minutes=90),
        "line breaks of JavaScript": "a\u2028b\u2029c",
        7: "an int key",
    }
    assert FAST.render(value) == DRF.render(value)
    assert b'"2026-03-08T07:00:00.123456Z"' in FAST.render(value)
    assert b"\\u2028" in FAST.render(value)


def test_an_indent_request_and_what_orjson_refuses_fall_back_to_drf():
    value = {"big": 2**70, "list": [1, 2]}
    assert FAST.render(value) == DRF.render(value)  # beyond 64 bits: orjson refuses
    indented = FAST.render({"a": [1]}, accepted_media_type="application/json; indent=2")
    assert indented == DRF.render({"a": [1]}, accepted_media_type="application/json; indent=2")
    assert FAST.render(None) == b""


@pytest.mark.django_db
def test_the_api_answers_through_it(cast, clients):
    response = clients.patient.get("/api/v1/me/")
    assert response.status_code == 200
    assert isinstance(response.accepted_renderer, FastJSONRenderer)
    assert response.content == DRF.render(response.data)
