"""Attacks on the session-20 fixes: the Section 39 cancel that waits for a later payment
(``later_payment``), judged under the person's lock.

Each test here fails on the code it was written against and passes once the defect it names is
fixed; the docstring of each says what is wrong and what is right. Business time is pinned
through the session's clock (``clock.at`` / ``clock.set``); nothing reads the wall clock.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, time
from pathlib import Path

import pytest

from app.admission.credentials import Credentials
from app.counter.records import CancelRequest, TxnState
from app.domain.calendar import BANGKOK
from app.domain.months import Month
from app.errors import CancelNotAllowed, ClientError
from app.main import Gateway
from tests.conftest import PartnerCredentials
from tests.support.clock import PinnedClock
from tests.support.counter_calls import (
    caller,
    person_locked,
    settlement_round_trip,
    waiting_on_person_lock,
)
from tests.support.people import add_person
from tests.support.rate_changes import confirm_months
from tests.support.rest_api import replicas
from tests.support.wsse import digest_token

pytestmark = pytest.mark.db

BAHT = 100


def _token(partner: PartnerCredentials) -> Credentials:
    return digest_token(partner.username, partner.password)


async def _s39_paid_to_last_month(gateway: Gateway, current: Month) -> str:
    """A Section 39 member with every month up to last month paid: only ``current`` is payable,
    whatever the day of the month."""
    async with gateway.db.primary.acquire() as conn:
        return await add_person(
            conn, section=39, coverage_start=current.minus(14),
            paid=Month.range(current.minus(14), current.minus(1)), replicas=replicas(gateway),
        )  # fmt: skip


# --- the person's lock taken after the cut-off was judged --------------------------------------
async def test_a_s39_cancel_queued_for_the_persons_lock_past_the_cut_off_voids_a_settled_payment(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    """app/counter/service.py ``cancel`` reads the clock and judges the cut-off
    (``ensure_cancellable``) once the payment's row is locked — its own comment: "a cancel that
    queued past the cut-off must not void a payment whose day may be settled" — and only then,
    for a Section 39 payment, waits for the person's row (``_no_later_payment`` →
    ``lock_person``). That lock is held by any confirm of the person, an option change, a
    registration, or the extract import's upsert (one transaction over the whole file).

    Here the cancel arrives at 22:59:59 of day D, waits for the person's lock, the day closes,
    D's settlement is taken at 23:05:30 and matches the payment; when the lock is let go the
    cancel goes through, judged at 22:59:59 and stamped ``cancelledAt`` 22:59:59: a settled
    payment is voided, so the partner's next file and the gateway's ledger disagree for a day
    already reconciled. (A Section 40 payment, with no person lock in its cancel, is refused
    as it should be.) Right: judge the cut-off after every lock the cancel waits for — take the
    person's lock first (or read ``now`` and call ``ensure_cancellable`` after
    ``_no_later_payment``'s lock) — and refuse with the cut-off reason."""
    day = clock.today()
    current = Month.of(day)
    nid = await _s39_paid_to_last_month(gateway, current)
    with clock.at(time(10, 0), on=day):
        paid = await confirm_months(gateway, partner, nid, [current], 432 * BAHT, section=39)
    assert paid.business_date == day
    with clock.at(time(22, 59, 59), on=day):
        async with person_locked(gateway.db.primary, nid) as let_go:
            cancel = asyncio.ensure_future(
                gateway.counter.cancel(
                    caller=caller(),
                    credentials=_token(partner),
                    request=CancelRequest(paid.partner_txn_id, "wrong person"),
                )
            )
            await waiting_on_person_lock(gateway)
            clock.set(datetime.combine(day, time(23, 5, 30), tzinfo=BANGKOK))
            _, _, report = await settlement_round_trip(
                gateway, partner=partner.name, business_date=day, now=True
            )
            matched = sum(t.matched_satang for t in report.record.summary.totals.values())
            assert matched == 432 * BAHT  # the day is settled with the payment in it
            await let_go()
            try:
                await cancel
                cancelled = True
            except CancelNotAllowed:
                cancelled = False
    state = await gateway.db.primary.fetchval(
        "SELECT state FROM payments WHERE receipt_no = $1", paid.receipt_no
    )
    assert not cancelled and state == TxnState.CONFIRMED.value, (
        f"a Section 39 payment settled (matched) at 23:05:30 was cancelled afterwards by a"
        f" cancel judged at 22:59:59 before it waited for the person's lock: state {state}"
    )


# --- a later payment made through another partner ------------------------------------------
async def test_a_refused_cancel_does_not_hand_out_another_partners_receipt(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    """DOMAIN.md, Privacy: "Partners see only what a counter needs: name, section, status,
    payable months and amounts." The later-payment check (app/counter/ledger.py ``_LATER``)
    looks at every partner's payments, rightly, but the refusal
    (app/counter/service.py ``_no_later_payment``) then gives partner A the receipt number of
    a payment partner B took (``later_receipt_no``, in the message, in ``detailTh`` and in the
    SOAP entry) and tells A to "cancel it first" — which A cannot: A's cancel and status name
    A's own transaction ids, and B's receipt is answered ``client.transaction_not_found`` to A.
    A learns that the member paid elsewhere, and B's receipt sequence, and is told to do the
    impossible. Right: name the later receipt only when the caller owns it; otherwise refuse
    with ``later_payment`` saying the later payment was taken by another counter network (and
    that only it, or SSO, can cancel it), without its receipt number."""
    day = clock.today()
    current = Month.of(day)
    other_name = f"p-{uuid.uuid4().hex[:10]}"
    issued = await gateway.registry.add_partner(
        name=other_name, cidrs=["127.0.0.0/8", "::1/128"], rate_limit=10_000
    )
    other = PartnerCredentials(other_name, issued.username, issued.password)
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(
            conn, section=39, coverage_start=current.minus(14),
            paid=Month.range(current.minus(14), current.minus(2)), replicas=replicas(gateway),
        )  # fmt: skip
    with clock.at(time(10, 0), on=day):
        first = await confirm_months(
            gateway, partner, nid, [current.minus(1)], 432 * BAHT, section=39
        )
        later = await confirm_months(gateway, other, nid, [current], 432 * BAHT, section=39)
        with pytest.raises(ClientError) as refused:
            await gateway.counter.cancel(
                caller=caller(), credentials=_token(partner),
                request=CancelRequest(first.partner_txn_id, "keyed twice"),
            )  # fmt: skip
    error = refused.value
    assert error.code == "client.cancel_not_allowed"
    assert error.details.get("reason") == "later_payment"
    shown = f"{error.message} {error.details}"
    assert later.receipt_no not in shown, (
        f"partner {partner.name} was handed receipt {later.receipt_no} of partner"
        f" {other.name}'s payment, and told to cancel it: {error.message}"
    )


# --- the contracts partners build against -----------------------------------------------------
def test_the_contracts_cancel_operation_names_the_later_payment_refusal() -> None:
    """docs/domain.md §4 and docs/partner-integration.md now say a Section 39 cancel is refused
    (``client.cancel_not_allowed``, reason ``later_payment``) while a later payment of the
    member stands, before the cut-off too. The contracts partners generate their clients from
    still say the opposite: wsdl/contribution.wsdl's CancelPayment documentation — "Cancel a
    confirmed payment on its business day, before the settlement cut-off ...; afterwards it is
    refused (client.cancel_not_allowed)" — and the REST operation ``cancelPayment``
    (app/counter/routes.py ``cancel``'s docstring, openapi/openapi.json): "after the cut-off,
    only a refund through SSO remains (422 client.cancel_not_allowed)". Both read as: before
    the cut-off a cancel goes through, and cancel_not_allowed means the cut-off passed. Right:
    both name the second refusal (``later_payment``, cancel the later receipt first)."""
    root = Path(__file__).resolve().parents[2]
    wsdl = (root / "wsdl" / "contribution.wsdl").read_text(encoding="utf-8")
    start = wsdl.index('<wsdl:operation name="CancelPayment">')
    cancel_doc = wsdl[start : wsdl.index("</wsdl:operation>", start)]
    spec = json.loads((root / "openapi" / "openapi.json").read_text(encoding="utf-8"))
    rest_doc = next(
        op.get("description", "") + op.get("summary", "")
        for path in spec["paths"].values()
        for op in path.values()
        if isinstance(op, dict) and op.get("operationId") == "cancelPayment"
    )
    missing = [name for name, doc in (("WSDL CancelPayment", cancel_doc),
                                      ("OpenAPI cancelPayment", rest_doc))
               if "later_payment" not in doc]  # fmt: skip
    assert not missing, f"{missing} do not say a cancel is refused while a later payment stands"
