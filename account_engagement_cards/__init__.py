"""Customer cards: a static site (an index and one card per account) built from the warehouse.

`account-engagement cards --out DIR` (or `python -m account_engagement_cards`, `make cards`);
see account_engagement_cards/cli.py.
"""
