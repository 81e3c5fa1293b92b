"""google.protobuf.Timestamp <-> aware UTC datetime."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    set_timestamp(stamp, moment)
    return stamp


def set_timestamp(stamp: Timestamp, moment: datetime) -> None:
    """Set a message's Timestamp field in place (no temporary message to copy in)."""
    # Exact integer arithmetic on the timedelta instead of Timestamp.FromDatetime, which is pure
    # Python (calendar.timegm) and was ~6 % of a task list page's CPU (docs/PERFORMANCE.md).
    if moment.tzinfo is None:  # naive: local time, as FromDatetime after astimezone read it
        moment = moment.astimezone(UTC)
    since = moment - EPOCH
    stamp.seconds = since.days * 86_400 + since.seconds
    stamp.nanos = since.microseconds * 1000


def from_timestamp(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)
