"""Notifications: signed webhooks on verdicts, triggers, promotions, rollbacks, holds and approvals
needed, and the daily standup digest, delivered through an outbox over the audit log.

* :mod:`.config`: ``<workspace>/notify.toml`` (webhooks, secrets, kinds, retry settings);
* :mod:`.payload`: which events are which kinds, and the JSON a webhook receives;
* :mod:`.sign`: the HMAC-SHA256 signature and timestamp headers (and their check);
* :mod:`.deliver`: one POST with a timeout, retries with backoff and jitter;
* :mod:`.outbox`: the ``deliveries`` table and :func:`~.outbox.dispatch`;
* :mod:`.digest`: the standup digest as Markdown;
* :mod:`.actions`: what the ``notify`` and ``digest`` commands and the page buttons do.
"""
