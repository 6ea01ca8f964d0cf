"""The requests Switchyard sends a system, and a smoke test over them, in the standard library only.

The workload of a parallel run and the smoke tests of a deploy draw their
messages from :func:`request_mix`. The Argo Rollouts export ships this very
file, unchanged, as the script of its pre-promotion Job (``python3 -c``, in a
plain Python image): a cluster smoke-tests the preview of a new version with
the same requests Switchyard sends one locally. Hence no imports beyond the
standard library here, and ``python3 smoke_requests.py URL`` works on its own.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

FIELD_VALUES: dict[str, Callable[[int], Any]] = {
    "str": lambda i: f"user-{i % 97}",
    "int": lambda i: i % 101,
    "float": lambda i: (i % 89) / 8.0,
    "bool": lambda i: i % 2 == 0,
    "list": lambda i: [i % 7, i % 11],
    "dict": lambda i: {"k": i % 13},
    "any": lambda i: f"v{i % 53}",
}


def request_mix(endpoints: dict[str, dict[str, str]], variants: int = 20) -> list[tuple[str, bytes]]:
    """``variants`` requests per entry endpoint, values varied so stores and caches see different keys."""
    mix = []
    for i in range(variants):
        for endpoint, shape in sorted(endpoints.items()):
            message = {f: FIELD_VALUES.get(t, FIELD_VALUES["any"])(i) for f, t in shape.items()}
            mix.append((endpoint, json.dumps(message).encode()))
    if not mix:
        raise ValueError("the system has no entry endpoints to send requests to")
    return mix


def _call(url: str, body: bytes | None, timeout_s: float) -> tuple[int, Any]:
    """(HTTP status, parsed JSON answer); a body that is not JSON raises ValueError."""
    request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - the URL is ours
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    return status, json.loads(raw)


def smoke(base_url: str, variants: int = 3, timeout_s: float = 10.0) -> tuple[int, list[str]]:
    """(requests answered well, problems): /health, then ``variants`` requests to every entry endpoint.

    A request is answered well when it gets HTTP 200 and JSON, as the local
    smoke test demands (:func:`engine.deploy.slots.smoke_test`); each problem
    is one line. A version that does not answer at all stops the test at once.
    """
    base = base_url.rstrip("/")
    try:
        status, health = _call(f"{base}/health", None, timeout_s)
        if status != 200 or health.get("status") != "ok":
            return 0, [f"/health: HTTP {status} {health}"]
        status, listing = _call(f"{base}/endpoints", None, timeout_s)
        mix = request_mix(listing["endpoints"], variants=variants)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return 0, [f"{base}: no usable answer ({type(exc).__name__}: {exc})"]
    good, problems = 0, []
    for endpoint, body in mix:
        try:
            status, answer = _call(f"{base}/call/{endpoint}", body, timeout_s)
        except ValueError:
            problems.append(f"{endpoint}: an answer that is not JSON")
            continue
        except OSError as exc:
            problems.append(f"{endpoint}: no answer ({type(exc).__name__}: {exc})")
            break
        if status == 200:
            good += 1
        else:
            problems.append(f"{endpoint}: HTTP {status} {json.dumps(answer)[:200]}")
    return good, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Smoke-test a served system: 0 when every request is fine.")
    parser.add_argument("url", help="the version's base URL, e.g. http://todo-api-system-preview")
    parser.add_argument("--variants", type=int, default=3, help="requests per entry endpoint")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    args = parser.parse_args(argv)
    good, problems = smoke(args.url, args.variants, args.timeout)
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    print(f"{args.url}: {good} requests answered with 200 and JSON, {len(problems)} problems")
    return 1 if problems or not good else 0


if __name__ == "__main__":
    sys.exit(main())
