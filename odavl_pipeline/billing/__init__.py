"""Billing: what is metered and sold (`catalogue`), the rating rules (`plans`, `quota`), when
periods close (`closing`) and usage corrections (`corrections`, `filters`)."""
