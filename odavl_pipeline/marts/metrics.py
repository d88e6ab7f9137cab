"""The billed metric of a usage event in SQL, which the extracts and the checks share (without
the extracts' Arrow and ADBC, which the checks do not need)."""

from odavl_pipeline.billing.catalogue import METRIC_OF_EVENT_TYPE

# for a row `u` of usage_events
METRIC_SQL = (
    "CASE u.event_type::text "
    + " ".join(
        f"WHEN '{event_type}' THEN '{metric}'"
        for event_type, metric in METRIC_OF_EVENT_TYPE.items()
    )
    + " END"
)
