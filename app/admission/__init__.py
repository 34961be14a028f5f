"""Who may call: source address, WS-Security or bearer credential, nonces, per-partner rate limits,
secrets at rest.
"""
