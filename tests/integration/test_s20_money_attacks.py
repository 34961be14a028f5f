"""Session 20 attacks on money and business time: what the partner feed says of a pending
Section 40 option change, and money kept for Section 39 months the membership never covered
(after a same-day cancel, or taken late when late months do not count) that the refund listing
never owes back.

Each test here fails on the code it was written against and passes once the defect it names is
fixed; the docstring of each says what DOMAIN.md / the docs ask for and what happens instead.
Business time is pinned through the session's clock (``clock.at``); nothing reads the wall clock.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date, time

import pytest

from app.admission.credentials import Credentials
from app.cli.session import operator
from app.counter.records import CancelRequest, InquiryRequest
from app.domain.months import Month
from app.errors import ClientError
from app.main import Gateway
from app.settings import Settings
from tests.conftest import PartnerCredentials
from tests.support.clock import PinnedClock
from tests.support.counter_calls import caller, s40_person
from tests.support.fleet import instance
from tests.support.people import add_person, wait_replayed
from tests.support.rate_changes import change_option, confirm_months, refund_list
from tests.support.rest_api import replicas
from tests.support.wsse import digest_token

pytestmark = pytest.mark.db

BAHT = 100


def _token(partner: PartnerCredentials) -> Credentials:
    return digest_token(partner.username, partner.password)


# --- an option change pending: the partner feed's amount due for the current month ------------
async def test_the_feed_gives_the_current_months_amount_at_the_option_still_in_force(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    """DOMAIN.md, Section 40: an option change takes effect "the next month"; docs/formats.md §6:
    the feed's amount due is "the current month's rate for the person's section and option",
    and its header names that month (``amount_month``). The counter agrees: after a change from
    option 1 to 3 made this month, the inquiry's ``amountDue`` for the current month is 70.00
    (option 1 is still in force) and the counter takes 70.00 for the month.

    The feed, made the same day for the same month, says 300.00 for this person: its query
    prices every Section 40 person at ``insured_persons.s40_option``, which the change already
    set to the new option, though the new option only applies from next month. A counter
    network that uses the feed asks 230.00 baht too much and the confirm is refused
    (client.amount_mismatch). The amount should be the one of the option in force in the
    amount month (app/feed/repository.py ``_AMOUNT``; the pending change's previous option
    is in ``s40_option_changes``, as the counter's member read takes it)."""
    nid = await s40_person(gateway, option=1)
    effective = await change_option(gateway, nid, 3)
    current = clock.month()
    assert effective == current.plus(1)

    inquiry = await gateway.counter.inquire(
        caller=caller(), credentials=_token(partner), request=InquiryRequest(nid)
    )
    assert inquiry.amount_due_satang == 70 * BAHT  # the counter: option 1 this month
    assert inquiry.default_months == (str(current),)
    assert inquiry.default_total_satang == 70 * BAHT

    feed_partner = f"feed-{uuid.uuid4().hex[:8]}"
    await gateway.registry.add_partner(name=feed_partner, cidrs=["10.0.0.0/8"])
    out = io.BytesIO()
    manifest = await gateway.feed_exports.export(
        out.write, partner=feed_partner, requester=operator(), section=40, file_format="csv"
    )
    assert manifest.amount_month == current
    rows = {r["national_id"]: r for r in csv.DictReader(io.StringIO(out.getvalue().decode()))}
    assert rows[nid]["amount_due"] == "70.00", rows[nid]


# --- a cancel that leaves a later Section 39 month paid past the rules' ending ----------------
async def test_a_cancel_leaving_a_later_s39_month_paid_past_the_end_is_refused_or_refunded(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    """docs/partner-integration.md §3: "Months are paid oldest first and without gaps";
    docs/domain.md: "Months paid after a membership ended are refunded" (``cover_ended``), and
    the refund listing does not look for a Section 39 ending by the rules because "from that
    month on the counter refuses the person's payments, so no month is paid after it".

    A cancel breaks that. On the 10th of month M a Section 39 member with M-3 and M-2 unpaid
    pays M-2 and M-1 (payment A, 864.00) and then M (payment B, 432.00), in that order as the
    counter requires. A is then cancelled the same day (allowed: its business day). B stays:
    M is paid while M-2 and M-1 are not. On the 16th M-1 is past due, so M-3, M-2, M-1 are three
    consecutive unpaid months and cover ends from M-3; M stays confirmed, paid for a month with
    no cover. The refund listing owes nothing for it (it finds Section 39 endings only where
    they are recorded), so 432.00 baht is kept for a month the member has no cover for.

    Either the cancel must be refused while a later payment of the person depends on it (the
    months "without gaps" rule, app/counter/service.py ``cancel``), or the listing must owe M
    back (``cover_ended``)."""
    current = clock.month()
    tenth = date(current.year, current.month, 10)
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(
            conn, section=39, coverage_start=current.minus(14),
            paid=Month.range(current.minus(14), current.minus(4)), replicas=replicas(gateway),
        )  # fmt: skip
    with clock.at(time(10, 0), on=tenth):
        inquiry = await gateway.counter.inquire(
            caller=caller(), credentials=_token(partner), request=InquiryRequest(nid)
        )
        assert inquiry.status == "active"
        assert [m.month for m in inquiry.months] == [
            str(current.minus(2)),
            str(current.minus(1)),
            str(current),
        ]
        first = await confirm_months(
            gateway, partner, nid, [current.minus(2), current.minus(1)], 864 * BAHT, section=39
        )
        later = await confirm_months(gateway, partner, nid, [current], 432 * BAHT, section=39)
        assert later.months == (str(current),)
        try:
            await gateway.counter.cancel(
                caller=caller(), credentials=_token(partner),
                request=CancelRequest(first.partner_txn_id, "keyed twice"),
            )  # fmt: skip
        except ClientError:
            return  # refused: M is never left paid after a gap (one of the two fixes)
    async with gateway.db.primary.acquire() as conn:
        await wait_replayed(conn, replicas(gateway))
    with clock.at(time(10, 0), on=date(current.year, current.month, 16)):
        after = await gateway.counter.inquire(
            caller=caller(), credentials=_token(partner), request=InquiryRequest(nid)
        )
        assert (after.status, after.ended_month) == ("terminated", str(current.minus(3)))
        owed = await refund_list(gateway, current, nid)
    assert owed == [(str(current), 432 * BAHT, "cover_ended")]


# --- months the counter took late, when late months do not count ----------------------------
async def test_months_taken_late_when_late_does_not_count_are_refunded_once_cover_ends(
    gateway: Gateway, settings: Settings, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    """DOMAIN.md, Section 39: "whether a month paid late counts as paid" is a setting
    (``SSOGW_S39_LATE_COUNTS_AS_PAID``); docs/domain.md: "Months paid after a membership ended
    are refunded" in full (``cover_ended``), and the listing skips Section 39 endings by the
    rules because "from that month on the counter refuses the person's payments, so no month
    is paid after it".

    With late months not counting, the counter still offers and takes the overdue month: on the
    20th of M-2 the member pays M-3 (432.00, late), on the 20th of M-1 pays M-2 (432.00, late).
    Both count as unpaid, so on the 20th of M, with M-1 unpaid too, cover has ended from M-3
    (three consecutive unpaid months). 864.00 baht was taken for M-3 and M-2, months the
    membership never covered, and ``ssogw refunds list`` owes nothing for them: the listing
    reads only recorded endings (app/refunds/repository.py), so the money is never returned.
    Either the counter must not take a month that cannot count, or the listing must owe it."""
    current = clock.month()

    def day(month: Month, n: int) -> date:
        return date(month.year, month.month, n)

    async with instance(settings, clock, "late-no-count", s39_late_counts_as_paid=False) as gw:
        async with gw.db.primary.acquire() as conn:
            nid = await add_person(
                conn, section=39, coverage_start=current.minus(16),
                paid=Month.range(current.minus(16), current.minus(4)), replicas=replicas(gw),
            )  # fmt: skip
        late = ((current.minus(3), current.minus(2)), (current.minus(2), current.minus(1)))
        for paying, on in late:
            with clock.at(time(10, 0), on=day(on, 20)):
                try:
                    paid = await confirm_months(gw, partner, nid, [paying], 432 * BAHT, section=39)
                except ClientError:
                    return  # not taken: no money is kept for a month that cannot count
                assert paid.months == (str(paying),)
            async with gw.db.primary.acquire() as conn:
                await wait_replayed(conn, replicas(gw))
        with clock.at(time(10, 0), on=day(current, 20)):
            after = await gw.counter.inquire(
                caller=caller(), credentials=_token(partner), request=InquiryRequest(nid)
            )
            assert (after.status, after.ended_month) == ("terminated", str(current.minus(3)))
            owed = [(str(m.month), m.refund_satang, m.reason)
                    async for p in gw.refunds.refunds(
                        current.minus(3), current.minus(2), requester=operator())
                    if p.national_id == nid for m in p.months]  # fmt: skip
    assert owed == [
        (str(current.minus(3)), 432 * BAHT, "cover_ended"),
        (str(current.minus(2)), 432 * BAHT, "cover_ended"),
    ]


async def test_the_later_payment_is_cancelled_first_then_the_earlier_one(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    """The rule the cancel now keeps (docs/domain.md, "The counter transaction" 4): an earlier
    payment is refused with ``client.cancel_not_allowed``, reason ``later_payment``, naming the
    later receipt; once that one is cancelled, the earlier one may be."""
    current = clock.month()
    tenth = date(current.year, current.month, 10)
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(
            conn, section=39, coverage_start=current.minus(14),
            paid=Month.range(current.minus(14), current.minus(4)), replicas=replicas(gateway),
        )  # fmt: skip
    with clock.at(time(10, 0), on=tenth):
        first = await confirm_months(
            gateway, partner, nid, [current.minus(2), current.minus(1)], 864 * BAHT, section=39
        )
        later = await confirm_months(gateway, partner, nid, [current], 432 * BAHT, section=39)

        async def cancel(txn_id: str) -> None:
            await gateway.counter.cancel(
                caller=caller(), credentials=_token(partner),
                request=CancelRequest(txn_id, "keyed twice"),
            )  # fmt: skip

        with pytest.raises(ClientError) as refused:
            await cancel(first.partner_txn_id)
        assert refused.value.code == "client.cancel_not_allowed"
        assert refused.value.details["reason"] == "later_payment"
        assert refused.value.details["later_receipt_no"] == later.receipt_no
        await cancel(later.partner_txn_id)
        await cancel(first.partner_txn_id)  # now nothing later is confirmed
