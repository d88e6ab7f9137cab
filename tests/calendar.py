"""The calendar tier: the instants at which the date-sensitive tests also run (docs/testing.md).

A test that takes the fixture `calendar_now` runs once per instant, with the clock set there for
everything it starts; `None` is the clock as it is (the system's, or ODAVL_TEST_NOW's).
"""

CALENDAR_INSTANTS = (
    "2026-12-31T23:59:30Z",  # thirty seconds before a year ends: the grace crosses midnight
    "2027-01-01T00:00:00Z",  # the first instant of a year
    "2027-01-31T23:59:59Z",  # the last second of a 31-day month
    "2027-02-28T12:00:00Z",  # the last day of a 28-day February
    "2028-02-29T12:00:00Z",  # a leap day
    "2031-06-15T08:00:00Z",  # years ahead, mid-month
    None,  # the clock as it is
)
