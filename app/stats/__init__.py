"""Statistics of confirmed payments, read from the enquiry store."""
