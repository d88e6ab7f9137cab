"""Plain-Python domain logic: record validation, signatures, attestation hashes.

Nothing here imports Dagster, Streamlit, Stripe or the database.
"""
