"""Complaint cases ("I paid but it does not show"), from opening to resolution."""
