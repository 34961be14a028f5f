"""Pure contribution rules: standard library, ``app.errors`` and ``app.frozen_records`` only, no
I/O, no clock."""
