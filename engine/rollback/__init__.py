"""Backups, rollback plans, restore-and-verify, failure documents."""
