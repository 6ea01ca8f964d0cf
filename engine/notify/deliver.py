"""POST a signed JSON body to a webhook, retrying with exponential backoff and jitter.

Every request has a timeout. A 2xx answer is success; a 4xx other than 408,
425 and 429 is final (the receiver refuses this request: a wrong secret, say,
and asking again will not change that); anything else (5xx, 408, 429, a
refused connection, a timeout) is retried after ``backoff_s * 2**(n-1)``
seconds (at most ``max_backoff_s``, shortened by up to ``jitter`` at random,
and at least what a 429's Retry-After asks) until ``max_attempts``. Retries
wait only as long as the caller's ``wait_s`` allows; whatever is left is
returned as *pending* with the delay still due, for the outbox to schedule.
Redirects are not followed (a webhook that moved is an error to fix in
``notify.toml``, and a redirected POST loses its body). Nothing here raises
for a network problem: it is an :class:`Attempt` with an error.

``sleep`` and ``rand`` are injectable, so tests run the backoff without waiting.
"""

from __future__ import annotations

import ipaddress
import random
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from engine.notify.sign import sign_headers

USER_AGENT = "Switchyard-Webhook/1"
RETRYABLE_4XX = frozenset({408, 425, 429})
ERROR_BODY_CHARS = 200

Sleep = Callable[[float], None]
Rand = Callable[[], float]


@dataclass(frozen=True)
class Attempt:
    """One POST: whether it was accepted, the HTTP status if any, and what went wrong."""

    ok: bool
    http_status: int | None
    error: str | None
    elapsed_s: float
    permanent: bool = False
    retry_after_s: float | None = None


@dataclass
class Outcome:
    """Where a delivery stands after :func:`deliver`: delivered, failed, or pending a retry."""

    status: Literal["delivered", "failed", "pending"]
    attempts: int
    last_error: str | None = None
    last_http_status: int | None = None
    delays: list[float] = field(default_factory=list)
    next_delay_s: float | None = None
    spent_s: float = 0.0
    """Seconds spent on requests and backoff waits."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201
        return None  # urllib then raises HTTPError with the 3xx status


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _opener(url: str) -> urllib.request.OpenerDirector:
    """No redirects; the environment's proxy settings, except for loopback, which is always direct."""
    proxies = urllib.request.ProxyHandler({} if _is_loopback(urlsplit(url).hostname) else None)
    return urllib.request.build_opener(proxies, _NoRedirect)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: the backoff decides


def post_json(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> Attempt:
    """One POST of ``body`` with a timeout; never raises for a network or HTTP problem."""
    request = urllib.request.Request(url, data=body, method="POST")
    for name, value in {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        **headers,
    }.items():
        request.add_header(name, value)
    start = time.monotonic()

    def elapsed() -> float:
        return time.monotonic() - start

    try:
        with _opener(url).open(request, timeout=timeout_s) as response:
            response.read(ERROR_BODY_CHARS)
            status = int(response.status)
        if 200 <= status < 300:
            return Attempt(True, status, None, elapsed())
        return Attempt(False, status, f"HTTP {status}", elapsed())
    except urllib.error.HTTPError as exc:
        try:
            text = exc.read(ERROR_BODY_CHARS).decode("utf-8", errors="replace").strip()
        except (OSError, TimeoutError):
            text = ""
        detail = " ".join(f"HTTP {exc.code} {exc.reason or ''}: {text}".split()).rstrip(": ")
        if 300 <= exc.code < 400:
            detail += f" (redirect to {exc.headers.get('Location', '?')} not followed)"
        permanent = 300 <= exc.code < 500 and exc.code not in RETRYABLE_4XX
        retry_after = _retry_after(exc.headers.get("Retry-After")) if exc.headers else None
        return Attempt(False, exc.code, detail, elapsed(), permanent, retry_after)
    except TimeoutError:
        return Attempt(False, None, f"timed out after {timeout_s:g} s", elapsed())
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (TimeoutError, socket.timeout)):
            return Attempt(False, None, f"timed out after {timeout_s:g} s", elapsed())
        return Attempt(False, None, f"cannot connect: {reason}", elapsed())
    except (OSError, ValueError) as exc:  # reset by peer, bad status line, malformed URL
        return Attempt(False, None, f"{type(exc).__name__}: {exc}", elapsed())


def backoff_delay(
    attempts: int, *, base_s: float, max_s: float, jitter: float, rand: Rand = random.random
) -> float:
    """Seconds to wait after the ``attempts``-th failure: ``base_s * 2**(attempts-1)``, capped, then
    shortened by up to ``jitter`` (a share) at random, so receivers are not hit in lockstep. With
    ``jitter <= 0.5`` each delay is longer than the one before until the cap."""
    nominal = min(max_s, base_s * 2 ** max(0, attempts - 1))
    return nominal * (1.0 - jitter * min(max(rand(), 0.0), 1.0))


def deliver(
    url: str,
    secret: str,
    body: bytes,
    *,
    headers: dict[str, str] | None = None,
    timeout_s: float,
    max_attempts: int,
    backoff_s: float,
    max_backoff_s: float,
    jitter: float,
    attempts_done: int = 0,
    wait_s: float = 0.0,
    sleep: Sleep = time.sleep,
    rand: Rand = random.random,
    on_attempt: Callable[[Attempt, Outcome], None] | None = None,
) -> Outcome:
    """Send ``body`` until accepted, refused for good, out of attempts, or out of ``wait_s``.

    ``attempts_done`` counts earlier attempts (by an earlier dispatch), so
    ``max_attempts`` is a total. Each attempt is signed afresh (new
    timestamp) and reported to ``on_attempt`` with the outcome so far, so
    the caller can record it before the next one.
    """
    outcome = Outcome(status="pending", attempts=attempts_done)
    while True:
        attempt = post_json(url, body, {**(headers or {}), **sign_headers(secret, body)}, timeout_s)
        outcome.attempts += 1
        outcome.last_error, outcome.last_http_status = attempt.error, attempt.http_status
        outcome.spent_s += attempt.elapsed_s
        outcome.next_delay_s = None
        if attempt.ok:
            outcome.status = "delivered"
        elif attempt.permanent or outcome.attempts >= max_attempts:
            outcome.status = "failed"
            if not attempt.permanent:
                outcome.last_error = f"{attempt.error} (gave up after {outcome.attempts} attempts)"
        else:
            delay = backoff_delay(
                outcome.attempts, base_s=backoff_s, max_s=max_backoff_s, jitter=jitter, rand=rand
            )
            if attempt.retry_after_s is not None:
                delay = min(max_backoff_s, max(delay, attempt.retry_after_s))
            outcome.next_delay_s = delay
        if on_attempt is not None:
            on_attempt(attempt, outcome)
        if (
            outcome.status != "pending"
            or outcome.next_delay_s is None
            or outcome.spent_s + outcome.next_delay_s > wait_s
        ):
            return outcome
        sleep(outcome.next_delay_s)
        outcome.spent_s += outcome.next_delay_s
        outcome.delays.append(outcome.next_delay_s)
