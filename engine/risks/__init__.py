"""Risks, playbooks and optimisation opportunities: the seed's section 7 and 8, tied to live evidence.

* :mod:`engine.risks.catalog` reads the text (``data/risks.toml`` or the workspace's own);
* :mod:`engine.risks.register` measures, from the store, which risks materialised;
* :mod:`engine.risks.playbooks` keeps the playbook ticks as audit events;
* :mod:`engine.risks.optimise` finds the figures that point at each optimisation.
"""
