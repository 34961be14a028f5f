"""What the caller can fix: bad input, not found, conflicts, business refusals."""

from __future__ import annotations

from app.errors.base import ClientError


class InvalidInput(ClientError):
    code = "client.invalid_input"
    http_status = 422
    default_message = "A field of the request is not valid."


class InvalidNationalId(InvalidInput):
    code = "client.invalid_national_id"
    default_message = "The national ID is not valid."


class InvalidMonth(InvalidInput):
    code = "client.invalid_month"
    default_message = "The contribution month is not valid (expected YYYY-MM)."


class InvalidAmount(InvalidInput):
    code = "client.invalid_amount"
    default_message = "The amount is not valid."


class InvalidSoapEnvelope(InvalidInput):
    code = "client.invalid_envelope"
    http_status = 400
    default_message = "The SOAP envelope is not valid."


class InvalidSettlementFile(InvalidInput):
    code = "client.invalid_settlement_file"
    default_message = "The settlement file is not valid."


class BusinessDateMismatch(InvalidInput):
    code = "client.business_date_mismatch"
    default_message = "The business date is not the gateway's business day for this payment."


class PaidAtOutOfWindow(InvalidInput):
    code = "client.paid_at_out_of_window"
    default_message = "The time the cash was taken is too far from the gateway's clock."


class ApplicationBackdated(InvalidInput):
    code = "client.application_backdated"
    default_message = (
        "The Section 39 application date (appliedOn) lies further before the day of the"
        " registration than allowed; an SSO officer's override with a reason is needed."
    )


class InvalidExtract(InvalidInput):
    code = "client.invalid_extract"
    default_message = "The source-system extract is not valid."


# --- not found -------------------------------------------------------------------------------
class NotFound(ClientError):
    code = "client.not_found"
    http_status = 404
    default_message = "The requested resource does not exist."


class PersonNotFound(NotFound):
    code = "client.person_not_found"
    default_message = "No insured person has this national ID."


class TransactionNotFound(NotFound):
    code = "client.transaction_not_found"
    default_message = "No transaction with this id exists for this partner."


class MethodNotAllowed(ClientError):
    code = "client.method_not_allowed"
    http_status = 405
    default_message = "This method is not allowed on this resource."


class UnknownOperation(NotFound):
    code = "client.unknown_operation"
    default_message = "The operation is not known."


# --- conflicts -------------------------------------------------------------------------------
class Conflict(ClientError):
    code = "client.conflict"
    http_status = 409
    default_message = "The request conflicts with the current state."


class AlreadyPaid(Conflict):
    code = "client.already_paid"
    default_message = "One or more of these months are already paid."


class DuplicateTransaction(Conflict):
    code = "client.duplicate_transaction"
    default_message = "This transaction id was already used with a different request."


class AlreadyExists(Conflict):
    code = "client.already_exists"
    default_message = "The resource already exists."


class StatusContradictsRules(Conflict):
    code = "client.status_contradicts_rules"
    default_message = (
        "The requested status contradicts the status the rules and the recorded events give."
    )


# --- business refusals -----------------------------------------------------------------------
class BusinessRefusal(ClientError):
    code = "client.refused"
    http_status = 422
    default_message = "The request is refused by the contribution rules."


class MonthNotPayable(BusinessRefusal):
    code = "client.month_not_payable"
    default_message = "A requested month cannot be paid today."


class MonthsNotContiguous(BusinessRefusal):
    code = "client.months_not_contiguous"
    default_message = "Months must be paid in order from the earliest unpaid payable month."


class AmountMismatch(BusinessRefusal):
    code = "client.amount_mismatch"
    default_message = "The amount differs from the amount due for these months."


class OverCeiling(BusinessRefusal):
    code = "client.over_ceiling"
    default_message = "The amount is over the per-transaction ceiling."


class SavingsNotAllowed(BusinessRefusal):
    code = "client.savings_not_allowed"
    default_message = "Additional savings are not allowed for this member or amount."


class MemberTerminated(BusinessRefusal):
    code = "client.member_terminated"
    default_message = "The membership has ended; payments are refused."


class MemberInactive(BusinessRefusal):
    code = "client.member_inactive"
    default_message = "The membership is not active; payments are refused."


class SectionMismatch(BusinessRefusal):
    code = "client.section_mismatch"
    default_message = "The person is not insured under the requested section."


class NoRate(BusinessRefusal):
    code = "client.no_rate"
    default_message = "No contribution rate is defined for this month."


class NotEligibleForSection39(BusinessRefusal):
    code = "client.s39_not_eligible"
    default_message = (
        "Not eligible for Section 39 (12 months of Section 33 contributions, applied within"
        " 6 months of leaving work)."
    )


class OptionChangeRefused(BusinessRefusal):
    code = "client.option_change_refused"
    default_message = "The Section 40 option cannot be changed now."


class CancelNotAllowed(BusinessRefusal):
    code = "client.cancel_not_allowed"
    default_message = "The payment cannot be cancelled at the counter."


class TransactionCancelled(BusinessRefusal):
    code = "client.transaction_cancelled"
    http_status = 409
    default_message = "The transaction was cancelled."


# --- access ----------------------------------------------------------------------------------
