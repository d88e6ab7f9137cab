"""Billing: what is metered and sold (`catalogue`), for rating, closing and reporting."""
