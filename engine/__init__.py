"""Switchyard engine: the product's logic, shared by the Streamlit pages and the CLI.

Nothing in this package imports streamlit; pages and the CLI both call
:mod:`engine.services`, so everything a page can do can be scripted.
"""

__version__ = "0.1.0"
