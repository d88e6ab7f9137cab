"""The dashboards' library: data access (the only module with SQL), sign-in, filters, UI helpers."""
