"""Export formats shared by every download of patient data (SPEC §10): the redisclosure notice,
formula-safe CSV cells, and writers that stream, so memory stays flat however many rows."""

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from itertools import islice

from django.core.serializers.json import DjangoJSONEncoder

# 42 CFR § 2.32 notice, which must accompany each disclosure of substance use disorder records.
REDISCLOSURE_NOTICE = (
    "This record which has been disclosed to you is protected by Federal confidentiality rules (42 CFR part 2). "
    "These rules prohibit you from using or disclosing this record, or testimony that describes the information "
    "contained in this record, in any civil, criminal, administrative, or legislative proceedings by any Federal, "
    "State, or local authority, against the patient, unless authorized by the consent of the patient, except as "
    "provided at 42 CFR 2.12(c)(5) or as authorized by a court in accordance with 42 CFR 2.64 or 2.65. In addition, "
    "the Federal rules prohibit you from making any other use or disclosure of this record unless at least one of "
    "the following applies: (i) Further use or disclosure is expressly permitted by the written consent of the "
    "individual whose information is being disclosed in this record or as otherwise permitted by 42 CFR part 2. "
    "(ii) You are a covered entity or business associate and have received the record for treatment, payment, or "
    "health care operations, or (iii) You have received the record from a covered entity or business associate as "
    "permitted by 45 CFR part 164, subparts A and E. A general authorization for the release of medical or other "
    "information is NOT sufficient to meet the required elements of written consent to further use or redisclose "
    "the record (see 42 CFR 2.31)."
)

# Spreadsheet programs run a cell that starts with these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        value = " ".join(str(item) for item in value)
    elif isinstance(value, datetime):
        value = utc_iso(value)  # SPEC §3: UTC with Z, as every other export writes times
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_stream(columns: Sequence[str], rows: Iterable[Sequence], *, notice: str = REDISCLOSURE_NOTICE,
               batch: int = 500) -> Iterator[str]:  # fmt: skip
    """The notice as the first line, a header, then the rows, written `batch` at a time; nothing
    accumulates. Rows must already be formula-safe (csv_cell on every cell a person could type)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow([f"# {notice}"])
    writer.writerow(columns)
    yield flush()
    rows = iter(rows)
    while chunk := list(islice(rows, batch)):
        writer.writerows(chunk)
        yield flush()


def stream_csv(columns: list[str], rows: Iterable[dict], *, notice: str = REDISCLOSURE_NOTICE) -> Iterator[str]:
    """Records as dicts, every cell made formula-safe."""
    cells = ([csv_cell(row.get(column)) for column in columns] for row in rows)
    return csv_stream(columns, cells, notice=notice)


def stream_json_object(fields: dict, lists: dict[str, Iterable], *, batch: int = 100) -> Iterator[str]:
    """{<fields>..., "<list>": [...], ...}: the small fields first, then each list item by item."""
    encode = DjangoJSONEncoder().encode
    yield "{" + ", ".join(f"{json.dumps(name)}: {encode(value)}" for name, value in fields.items())
    for name, items in lists.items():
        yield f", {json.dumps(name)}: ["
        items = iter(items)
        first = True
        while chunk := list(islice(items, batch)):
            yield ("" if first else ",") + ",".join(encode(item) for item in chunk)
            first = False
        yield "]"
    yield "}\n"


def stream_json(meta: dict, sections: dict[str, Iterable[dict]]) -> Iterator[str]:
    """{"meta": {...}, "<section>": [...], ...}, written item by item."""
    return stream_json_object({"meta": meta}, sections)


def utc_iso(value: datetime) -> str:
    """A datetime as RFC 3339 in UTC with Z (SPEC §3), cheaply when it already is UTC."""
    text = value.isoformat()
    if not text.endswith("+00:00"):
        text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z"
