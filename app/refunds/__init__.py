"""Refunds owed: overpayments after a rate cut, and months paid after a membership ended."""
