"""SOAP 1.1 and 1.2 adapter over the counter services: envelope parsing (hardened), dispatch,
faults, WS-Security extraction and serialisation, against the contract in ``wsdl/``.
"""

from app.soap.router import soap_router

__all__ = ["soap_router"]
