"""Customer cards: a static site (an index and one card per account) built from the warehouse.

`python -m cards --out DIR` (or `make cards`); see cards/cli.py.
"""
