"""The ``[prometheus]`` section of the policy: where Prometheus is and which PromQL measures a system.

Queries are templates. ``{system}``, ``{version}`` (``old`` or ``new``),
``{window}`` (a PromQL duration such as ``60s``) and ``{quantile}`` are
replaced before a query is sent; every other brace is PromQL's own. The
defaults read what a served version exposes on ``/metrics``
(:mod:`engine.metrics.service`) and what the gateway counts when it mirrors.
A system that is scraped under other names gets its own queries in
``[prometheus.systems.<name>]``; what it leaves out comes from the defaults::

    [prometheus]
    url = "http://127.0.0.1:9090"
    timeout_s = 10
    scrape_interval_s = 15

    [prometheus.systems.todo_api_system]
    requests = 'sum(rate(http_requests_total{app="todo",track="{version}"}[{window}]))'
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

_SEL = 'system="{system}",version="{version}"'

DEFAULT_QUERIES = {
    "requests": f"sum(rate(switchyard_requests_total{{{_SEL}}}[{{window}}]))",
    "errors": f'sum(rate(switchyard_requests_total{{{_SEL},code!~"2.."}}[{{window}}]))',
    "latency_ms": (
        "1000 * histogram_quantile({quantile}, sum by (le) ("
        f'rate(switchyard_request_duration_seconds_bucket{{{_SEL},code=~"2.."}}[{{window}}])))'
    ),
    "compared": 'sum(rate(switchyard_gateway_mirror_compared_total{system="{system}"}[{window}]))',
    "mismatches": 'sum(rate(switchyard_gateway_mirror_mismatches_total{system="{system}"}[{window}]))',
}
"""Per-second rates (requests, errors, compared, mismatches) and a latency quantile in milliseconds."""


class SystemQueries(BaseModel):
    """PromQL templates for one system; a field left out falls back to the default."""

    model_config = ConfigDict(extra="forbid")
    requests: str | None = Field(None, description="requests per second of {version}")
    errors: str | None = Field(None, description="failed (non-2xx) requests per second of {version}")
    latency_ms: str | None = Field(None, description="the {quantile} latency of {version}'s ok requests, ms")
    compared: str | None = Field(None, description="mirrored requests compared per second (new only)")
    mismatches: str | None = Field(None, description="compared requests whose answers differed, per second")


class PrometheusConfig(BaseModel):
    """Where Prometheus answers and how to ask it; ``url`` unset means no Prometheus is configured."""

    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(
        None, description="base URL of the Prometheus HTTP API, e.g. http://127.0.0.1:9090"
    )
    timeout_s: float = Field(10.0, gt=0, le=300, description="timeout of every HTTP call")
    scrape_interval_s: float = Field(15.0, gt=0, description="how often the systems are scraped")
    queries: SystemQueries = SystemQueries()
    systems: dict[str, SystemQueries] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"an http(s) URL such as http://127.0.0.1:9090, not {url!r}")
        return url.rstrip("/")

    def queries_for(self, system: str) -> dict[str, str]:
        """The query templates for ``system``: its own, else the section's, else the defaults."""
        own = self.systems.get(system, SystemQueries()).model_dump(exclude_none=True)
        shared = self.queries.model_dump(exclude_none=True)
        return DEFAULT_QUERIES | shared | own

    def window_s(self, bucket_s: float) -> float:
        """The PromQL rate window for a bucket: the bucket, but at least four scrapes."""
        return max(bucket_s, 4 * self.scrape_interval_s)


def fill(template: str, **values: str) -> str:
    """``template`` with each ``{name}`` placeholder replaced (PromQL's own braces left alone)."""
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template
