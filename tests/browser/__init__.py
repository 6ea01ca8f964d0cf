"""Browser tests: a package so its test_journey.py does not clash with tests/deploy/test_journey.py."""
