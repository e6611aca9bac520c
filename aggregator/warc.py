"""Raw snapshots as WARC files, for web-archive tools (pywb, OpenWayback, warcio…).

Each stored response becomes one WARC `response` record with its HTTP
status and headers. We store bodies decoded (after gzip/brotli), so the
Content-Encoding, Transfer-Encoding and Content-Length headers are
rewritten to describe the bytes actually in the record.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from http import HTTPStatus
from typing import BinaryIO

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from . import __version__
from .store import snapshot_bytes

_DROPPED = {"content-encoding", "transfer-encoding", "content-length"}


def _status_line(status: int | None) -> str:
    status = status or 200
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def write_warc(db, out: BinaryIO, *, source_ids: Iterable[str] = ()) -> int:
    """Write every stored snapshot (of these sources, or all) as gzipped WARC records; returns the count."""
    writer = WARCWriter(out, gzip=True)
    info = writer.create_warcinfo_record(
        "ipnews-snapshots.warc.gz",
        {"software": f"ipnews/{__version__}", "format": "WARC File Format 1.1",
         "description": "Raw responses archived by ipnews from intellectual-property office sites"},
    )
    writer.write_record(info)
    ids = list(source_ids)
    where = f"WHERE source_id IN ({', '.join('?' for _ in ids)})" if ids else ""
    count = 0
    cursor = db.execute(
        f"SELECT final_url, status, headers, fetched, content FROM snapshots {where} ORDER BY id", ids
    )
    for final_url, status, headers_json, fetched, compressed in cursor:
        body = snapshot_bytes(compressed)
        headers = [(k, v) for k, v in json.loads(headers_json or "{}").items() if k.lower() not in _DROPPED]
        headers.append(("Content-Length", str(len(body))))
        http_headers = StatusAndHeaders(_status_line(status), headers, protocol="HTTP/1.1")
        record = writer.create_warc_record(
            final_url, "response", payload=io.BytesIO(body), http_headers=http_headers,
            warc_headers_dict={"WARC-Date": fetched},
        )
        writer.write_record(record)
        count += 1
    return count
