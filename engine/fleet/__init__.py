"""The fleet: inventory rules (category, priority, phase), import, and the sample generator."""
