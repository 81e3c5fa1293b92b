"""to_timestamp computes what protobuf's own Timestamp.FromDatetime does, for any aware moment
(it replaced that call on the hot paths)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from services.kit.proto_time import from_timestamp, to_timestamp

OFFSETS = st.integers(min_value=-23 * 60, max_value=23 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@given(moment=st.datetimes(min_value=datetime(1, 1, 2), timezones=OFFSETS))
def test_same_as_protobufs_own_conversion(moment: datetime) -> None:
    expected = Timestamp()
    expected.FromDatetime(moment.astimezone(UTC))
    assert to_timestamp(moment) == expected
    assert from_timestamp(to_timestamp(moment)) == moment
