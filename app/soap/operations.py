"""The four operations: the Body's element names one, which reads its request, makes ONE call
on ``CounterOperations`` and writes the result. No rule, no arithmetic: those live below.

A SOAPAction (SOAP 1.1's HTTP header) or SOAP 1.2's ``action`` parameter, when one is sent and
not empty, must be the WSDL's soapAction of the Body's operation: a proxy in front that lets
calls through by their SOAPAction sees the operation the gateway performs.

A request element that cannot be read (a missing, repeated or mistyped element) is not refused
here: it goes to ``CounterOperations.refuse``, which admits the caller first, so a caller that
is not admitted learns only that, whatever its request holds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, TypeVar

from app.admission.credentials import Credentials
from app.admission.records import Caller, Protocol
from app.counter.operations import CounterOperations
from app.counter.records import CounterInfo, Operation
from app.errors import InvalidInput, InvalidSoapEnvelope, UnknownOperation
from app.soap.deserialise import (
    national_id_as_sent,
    read_cancel,
    read_confirm,
    read_inquiry,
    read_status,
)
from app.soap.envelope import Envelope
from app.soap.namespaces import CONTRIBUTION, display_name, sso
from app.soap.serialise import (
    cancel_response,
    confirm_response,
    inquiry_response,
    status_response,
)
from app.soap.wsse import read_username_token


@dataclass(frozen=True, slots=True)
class Call:
    """What one request brings besides its Body: who sent it and with which credentials."""

    source_ip: str
    forwarded_for: str | None
    request_id: str
    credentials: Credentials

    def caller(self, counter: CounterInfo) -> Caller:
        """The service's Caller, with the operator and terminal the request named."""
        return Caller(
            protocol=Protocol.SOAP,
            source_ip=self.source_ip,
            request_id=self.request_id,
            operator=counter.operator_id,
            terminal=counter.terminal_id,
            forwarded_for=self.forwarded_for,
        )


#: An operation: reads its payload, makes its call, and writes the response element (XML text).
Handler = Callable[[CounterOperations, object, Call], Awaitable[str]]
T = TypeVar("T")


async def _read(
    read: Callable[[object], T],
    payload: object,
    *,
    operation: Operation,
    service: CounterOperations,
    call: Call,
) -> T:
    """The request read from the payload; if it cannot be read, refused once the caller is
    admitted."""
    try:
        return read(payload)
    except InvalidInput as error:
        await service.refuse(
            caller=call.caller(CounterInfo()),
            credentials=call.credentials,
            operation=operation,
            error=error,
            national_id=national_id_as_sent(payload),
        )


async def _inquire(service: CounterOperations, payload: object, call: Call) -> str:
    request, counter = await _read(
        read_inquiry, payload, operation=Operation.INQUIRE, service=service, call=call
    )
    result = await service.inquire(
        caller=call.caller(counter), credentials=call.credentials, request=request
    )
    return inquiry_response(result)


async def _confirm(service: CounterOperations, payload: object, call: Call) -> str:
    request = await _read(
        read_confirm, payload, operation=Operation.CONFIRM, service=service, call=call
    )
    result = await service.confirm(
        caller=call.caller(request.counter), credentials=call.credentials, request=request
    )
    return confirm_response(result)


async def _cancel(service: CounterOperations, payload: object, call: Call) -> str:
    request, counter = await _read(
        read_cancel, payload, operation=Operation.CANCEL, service=service, call=call
    )
    result = await service.cancel(
        caller=call.caller(counter), credentials=call.credentials, request=request
    )
    return cancel_response(result)


async def _status(service: CounterOperations, payload: object, call: Call) -> str:
    partner_txn_id, counter = await _read(
        read_status, payload, operation=Operation.STATUS, service=service, call=call
    )
    result = await service.status(
        caller=call.caller(counter), credentials=call.credentials, partner_txn_id=partner_txn_id
    )
    return status_response(result)


_HANDLERS: Final[Mapping[Operation, Handler]] = MappingProxyType(
    {
        Operation.INQUIRE: _inquire,
        Operation.CONFIRM: _confirm,
        Operation.CANCEL: _cancel,
        Operation.STATUS: _status,
    }
)
_BY_ELEMENT: Final[Mapping[str, Operation]] = MappingProxyType(
    {sso(operation.value): operation for operation in Operation}
)


def operation_of(envelope: Envelope) -> Operation:
    """The operation the Body's element names (document/literal wrapped: its own name)."""
    operation = _BY_ELEMENT.get(envelope.payload_name)
    if operation is None:
        name = display_name(envelope.payload_name)
        raise UnknownOperation(
            f"The Body element {name} is not an operation of this service; expected one of "
            + ", ".join(op.value for op in Operation)
            + f" in the namespace {CONTRIBUTION}.",
            element=name,
        )
    return operation


def soap_action(operation: Operation) -> str:
    """The WSDL's soapAction of ``operation`` (both bindings)."""
    return f"{CONTRIBUTION}/{operation.value}"


def check_soap_action(operation: Operation, declared: Iterable[str | None]) -> None:
    """Refuse (``client.invalid_envelope``) a declared action, SOAPAction or SOAP 1.2
    ``action``, that is not empty and is not ``operation``'s soapAction."""
    expected = soap_action(operation)
    for value in declared:
        action = (value or "").strip()
        if len(action) >= 2 and action[0] == action[-1] == '"':
            action = action[1:-1].strip()
        if action and action != expected:
            raise InvalidSoapEnvelope(
                f"The SOAPAction {action[:120]!r} does not name the Body's operation,"
                f" {operation.value}: send {expected!r}, or no SOAPAction.",
                expected=expected,
            )


async def perform(
    operation: Operation,
    envelope: Envelope,
    *,
    service: CounterOperations,
    source_ip: str,
    forwarded_for: str | None,
    request_id: str,
) -> str:
    """Carry out one operation of a parsed envelope; its response element, as XML text."""
    call = Call(source_ip, forwarded_for, request_id, read_username_token(envelope))
    return await _HANDLERS[operation](service, envelope.payload, call)
