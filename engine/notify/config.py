"""``<workspace>/notify.toml``: where notifications go, which kinds each webhook hears, how hard to try.

::

    timeout_s = 5          # every POST gives up after this many seconds
    max_attempts = 5       # then the delivery is marked failed, with the last error
    backoff_s = 1          # wait before the 2nd attempt; doubles each time (with jitter) ...
    max_backoff_s = 60     # ... up to this
    wait_s = 10            # how long one command keeps retrying before leaving the rest for later
    flush_wait_s = 120     # the same for `notify --flush` and the page's "Send pending now"

    [[webhooks]]
    name = "team-chat"
    url = "https://chat.example.com/hooks/switchyard"
    secret_env = "SWITCHYARD_WEBHOOK_SECRET"       # or: secret = "..." in the file itself
    kinds = ["verdict", "trigger", "promoted", "rolled_back", "hold", "approval_needed", "digest"]

No file means no webhooks. A malformed file is an InputError naming the file
and the field. A secret named by ``secret_env`` is read when a notification
is signed, so a missing variable holds back that webhook only (its deliveries
wait, with the reason) and ``notify`` lists it as a problem.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, field_validator
from pydantic_core.core_schema import ValidationInfo

from engine.models.common import load_toml_model
from engine.workspace import Workspace

NOTIFY_FILE = "notify.toml"

Kind = Literal["verdict", "trigger", "promoted", "rolled_back", "hold", "approval_needed", "digest"]
KINDS: tuple[str, ...] = get_args(Kind)
"""Every kind a webhook can subscribe to, in the order a payload names them."""

WebhookName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Webhook(BaseModel):
    """One receiver: a URL, the secret its requests are signed with, and the kinds it hears."""

    model_config = ConfigDict(extra="forbid")

    name: WebhookName = Field(description="Stable name: deliveries and the cursor are kept under it.")
    url: str
    secret: SecretStr | None = None
    secret_env: str | None = Field(None, validate_default=True)
    kinds: list[Kind] = Field(default_factory=lambda: list(KINDS), min_length=1)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("an http:// or https:// URL with a host")
        return url.strip()

    @field_validator("secret_env")
    @classmethod
    def _one_secret(cls, secret_env: str | None, info: ValidationInfo) -> str | None:
        secret = info.data.get("secret")
        if "secret" not in info.data and secret_env is None:
            return None  # the secret itself was malformed; that is the error to report
        if (secret is None) == (secret_env is None):
            raise ValueError(
                'exactly one of secret = "..." or secret_env = "VARIABLE" '
                "(the HMAC key the requests are signed with)"
            )
        if secret is not None and not secret.get_secret_value():
            raise ValueError("a non-empty secret")
        if secret_env is not None and not ENV_NAME.match(secret_env):
            raise ValueError("the name of an environment variable (letters, digits, _)")
        return secret_env

    @field_validator("kinds")
    @classmethod
    def _no_repeats(cls, kinds: list[str]) -> list[str]:
        return list(dict.fromkeys(kinds))

    def resolve_secret(self) -> str | None:
        """The HMAC key, or None when ``secret_env`` names a variable that is not set (or empty)."""
        if self.secret is not None:
            return self.secret.get_secret_value()
        return os.environ.get(self.secret_env or "") or None

    def display_url(self) -> str:
        """The URL without its path or query, which often carry a token (chat services do that)."""
        parts = urlsplit(self.url)
        port = f":{parts.port}" if parts.port else ""
        rest = "/…" if parts.path.strip("/") or parts.query else "/"
        return f"{parts.scheme}://{parts.hostname}{port}{rest}"


class NotifyConfig(BaseModel):
    """The content of ``notify.toml``."""

    model_config = ConfigDict(extra="forbid")

    timeout_s: float = Field(5.0, gt=0, le=60)
    max_attempts: int = Field(5, ge=1, le=20)
    backoff_s: float = Field(1.0, gt=0, le=3600)
    max_backoff_s: float = Field(60.0, gt=0, le=86400)
    jitter: float = Field(0.25, ge=0, le=0.5)
    wait_s: float = Field(10.0, ge=0, le=3600)
    flush_wait_s: float = Field(120.0, ge=0, le=86400)
    webhooks: list[Webhook] = []

    @field_validator("webhooks")
    @classmethod
    def _unique_names(cls, hooks: list[Webhook]) -> list[Webhook]:
        names = [h.name for h in hooks]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"webhook names that are unique; used twice: {', '.join(twice)}")
        return hooks

    def webhook(self, name: str) -> Webhook | None:
        return next((h for h in self.webhooks if h.name == name), None)

    def subscribed(self, kind: str) -> list[Webhook]:
        return [h for h in self.webhooks if kind in h.kinds]

    def problems(self, path: Path) -> list[str]:
        """What stops a configured webhook from sending (today: a secret variable that is not set)."""
        return [
            f"{path}: webhooks[{i}].secret_env: environment variable {h.secret_env} is not set; "
            f"deliveries to {h.name} wait until it is"
            for i, h in enumerate(self.webhooks)
            if h.resolve_secret() is None
        ]


def notify_path(ws: Workspace) -> Path:
    return ws.root / NOTIFY_FILE


def load_config(ws: Workspace) -> NotifyConfig:
    """The workspace's notification settings; no file means no webhooks. A bad file raises InputError."""
    path = notify_path(ws)
    if not path.exists():
        return NotifyConfig()
    return load_toml_model(NotifyConfig, path)
