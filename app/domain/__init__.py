"""Pure contribution rules: standard library and ``app.errors`` only, no I/O, no clock."""
