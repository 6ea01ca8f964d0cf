"""HMAC-SHA256 signatures on webhook requests, and their check (for receivers and tests).

Each request carries::

    X-Switchyard-Timestamp: 1767225600            (Unix seconds when it was signed)
    X-Switchyard-Signature: sha256=<hex>          (HMAC-SHA256 of "<timestamp>." + raw body)

A receiver recomputes the HMAC over the timestamp, a dot and the raw body
bytes with the shared secret, compares in constant time, and refuses a
timestamp more than a few minutes old, so a captured request cannot be replayed
later. Every retry is signed afresh with a new timestamp; the body (and its
``event_id``) stays the same, so receivers can also drop duplicates.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Switchyard-Signature"
TIMESTAMP_HEADER = "X-Switchyard-Timestamp"
PREFIX = "sha256="
TOLERANCE_S = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>`` over ``b"<timestamp>." + body``."""
    digest = hmac.new(secret.encode("utf-8"), f"{int(timestamp)}.".encode() + body, hashlib.sha256)
    return PREFIX + digest.hexdigest()


def sign_headers(secret: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    """The two headers to send with ``body``."""
    timestamp = int(time.time() if now is None else now)
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(secret, timestamp, body)}


def verify(
    secret: str,
    body: bytes,
    timestamp: str | None,
    signature_header: str | None,
    *,
    tolerance_s: float = TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """True iff ``signature_header`` signs ``body`` at ``timestamp`` with ``secret``, and is recent."""
    if not timestamp or not signature_header:
        return False
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, ts, body), signature_header.strip())
