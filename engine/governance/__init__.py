"""What sits between the evidence and the switch: holds, second-operator approvals and re-judgements.

Each is recorded as audit events (no table of its own): the events are the
history the KPIs and the post-mortem replay, so a hold or an approval is
visible there with who, when and why, and the current state is simply the
newest event.
"""
