"""REST plumbing shared by every capability's routes: the ``/api/v1`` app, problem+json errors,
wire formats.
"""
