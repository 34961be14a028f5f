"""Overpayments to refund after a retroactive rate cut."""
