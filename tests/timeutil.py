from datetime import UTC, datetime, timedelta


def iso_ago(**delta) -> str:
    """An RFC 3339 UTC instant this long before now."""
    return (datetime.now(UTC) - timedelta(**delta)).isoformat().replace("+00:00", "Z")
