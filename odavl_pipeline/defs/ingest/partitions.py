"""The landing zone's date folders are daily partitions (UTC): from 1970-01-01, the earliest day
that can be landed, to tomorrow, the latest (a producer's clock a little ahead)."""

import dagster as dg

daily_partitions = dg.DailyPartitionsDefinition(start_date="1970-01-01", end_offset=2)
