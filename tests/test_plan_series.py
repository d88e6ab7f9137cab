"""The monthly-series rule is written twice: in `billing/plans.py` (`on_series`, which the marts'
rating uses) and in SQL (`odavl_on_series`, which the plan-history trigger uses to tell Stripe's
move to the next period from a re-anchoring). They must agree on every pair of instants."""

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odavl_pipeline.billing.plans import add_months, on_series

INSTANTS = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2600, 12, 31), timezones=st.just(UTC)
)
MONTH_ENDS = st.builds(
    lambda year, month, day, time: (
        datetime(year, month, 1, tzinfo=UTC) + timedelta(days=day - 1) + time
    ),
    st.integers(1970, 2600),
    st.integers(1, 12),
    st.integers(28, 31),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=1) - timedelta(microseconds=1)),
)


@st.composite
def anchor_and_moment(draw) -> tuple[datetime, datetime]:
    """An anchor (often a month's end) and a moment on its series, next to it, or anywhere."""
    anchor = draw(st.one_of(INSTANTS, MONTH_ENDS))
    months = draw(st.integers(-120, 1200))
    on = add_months(anchor, months)
    moment = draw(
        st.one_of(
            st.just(on),
            st.builds(
                lambda shift: on + shift,
                st.sampled_from(
                    [
                        timedelta(microseconds=1),
                        -timedelta(microseconds=1),
                        timedelta(days=1),
                        -timedelta(days=1),
                    ]
                ),
            ),
            INSTANTS,
            MONTH_ENDS,
        )
    )
    return anchor, moment


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)  # one connection serves every example: the function reads nothing
@given(pairs=st.lists(anchor_and_moment(), min_size=1, max_size=20))
def test_the_sql_rule_and_the_python_rule_agree(conn, pairs):
    answers = conn.execute(
        "SELECT odavl_on_series(a, m) FROM unnest(%s::timestamptz[], %s::timestamptz[]) "
        "WITH ORDINALITY AS p(a, m, n) ORDER BY n",
        ([a for a, _ in pairs], [m for _, m in pairs]),
    ).fetchall()
    assert [answer for (answer,) in answers] == [on_series(a, m) for a, m in pairs]


def test_a_month_end_anchor_stays_on_its_series_through_short_months(conn):
    anchor = datetime(2026, 1, 31, 12, tzinfo=UTC)
    for moment, expected in (
        (datetime(2026, 2, 28, 12, tzinfo=UTC), True),
        (datetime(2026, 3, 31, 12, tzinfo=UTC), True),
        (datetime(2026, 3, 28, 12, tzinfo=UTC), False),
        (datetime(2028, 2, 29, 12, tzinfo=UTC), True),  # a leap day
    ):
        assert on_series(anchor, moment) is expected
        assert (
            conn.execute("SELECT odavl_on_series(%s, %s)", (anchor, moment)).fetchone()[0]
            is expected
        )
