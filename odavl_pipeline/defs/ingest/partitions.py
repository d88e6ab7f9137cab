"""The landing zone's date folders are daily partitions (UTC)."""

import dagster as dg

daily_partitions = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_offset=1)
