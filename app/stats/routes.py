"""Statistics of paid contributions over REST (scope ``admin``), read from the enquiry store."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import ConfigDict, Field

from app.rest.caller import CallerDep, TokenDep
from app.rest.problem import problem_responses
from app.rest.wire import Baht, DateIn, OutModel, ReadPathName, baht
from app.stats.records import PaymentGroup
from app.stats.service import PaymentStats, PaymentStatsReport

TAG = "statistics"


class PaymentGroupOut(OutModel):
    """Confirmed payments of one day, section or partner."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "key": "cvs-demo",
                    "kind": "partner",
                    "count": 1520,
                    "amount": "152000.00",
                    "savings": "0.00",
                }
            ]
        }
    )

    key: str = Field(description="The day (YYYY-MM-DD), the section, or the partner's name.")
    kind: Literal["partner", "client"] | None = Field(
        description="With groupBy=partner: whether the name is a partner's or a client's."
    )
    count: int
    amount: Baht = Field(description="Cash taken, additional savings included.")
    savings: Baht

    @classmethod
    def of(cls, g: PaymentGroup) -> PaymentGroupOut:
        return cls.model_validate(
            {
                "key": g.key,
                "kind": g.kind,
                "count": g.count,
                "amount": baht(g.amount_satang),
                "savings": baht(g.savings_satang),
            }
        )


class PaymentStatsOut(OutModel):
    """Counts and amounts of confirmed payments by business date in ``[from, to]``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "from": "2024-06-01",
                    "to": "2024-06-30",
                    "groupBy": "section",
                    "groups": [
                        {
                            "key": "39",
                            "kind": None,
                            "count": 10,
                            "amount": "4320.00",
                            "savings": "0.00",
                        },
                        {
                            "key": "40",
                            "kind": None,
                            "count": 20,
                            "amount": "2000.00",
                            "savings": "0.00",
                        },
                    ],
                    "count": 30,
                    "amount": "6320.00",
                    "savings": "0.00",
                    "asOf": "2024-06-30T09:30:00.123456+07:00",
                    "servedBy": "replica",
                }
            ]
        }
    )

    from_: date = Field(alias="from")
    to: date
    group_by: Literal["day", "section", "partner"]
    groups: list[PaymentGroupOut] = Field(description="In key order.")
    count: int
    amount: Baht
    savings: Baht
    as_of: datetime
    served_by: ReadPathName

    @classmethod
    def of(cls, r: PaymentStatsReport) -> PaymentStatsOut:
        return cls.model_validate(
            {
                "from": r.first,
                "to": r.last,
                "group_by": r.group_by,
                "groups": [PaymentGroupOut.of(g) for g in r.groups],
                "count": r.count,
                "amount": baht(r.amount_satang),
                "savings": baht(r.savings_satang),
                "as_of": r.meta.as_of,
                "served_by": r.meta.path,
            }
        )


def add_stats_routes(router: APIRouter, stats: PaymentStats) -> None:
    """Register the statistics routes on ``router``."""

    @router.get(
        "/stats/payments",
        tags=[TAG],
        operation_id="paymentStats",
        summary="Counts and amounts of confirmed payments, by day, section or partner",
        response_model=PaymentStatsOut,
        responses=problem_responses(401, 403, 422, 429, 500, 503),
    )
    async def payment_stats(
        caller: CallerDep,
        token: TokenDep,
        from_: Annotated[DateIn, Query(alias="from", description="First business date.")],
        to: Annotated[DateIn, Query(description="Last business date (at most 366 days in all).")],
        group_by: Annotated[Literal["day", "section", "partner"], Query(alias="groupBy")] = "day",
    ) -> PaymentStatsOut:
        """Cancelled payments are not counted; a payment counts on its business date."""
        report = await stats.payments(
            caller=caller, credentials=token, first=from_, last=to, group_by=group_by
        )
        return PaymentStatsOut.of(report)
