"""The partner feed: the insured persons a counter network needs, as a file with a manifest."""
