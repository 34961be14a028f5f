"""Loaded at interpreter start-up from ``PYTHONPATH`` (``bench.probe --stages`` puts this
directory first): times the gateway's stages (``bench.stage_waits``) when ``BENCH_STAGES``
names the file for their totals. Every other process started with it does nothing."""

import os

if os.environ.get("BENCH_STAGES"):
    from bench.stage_waits import install

    install()
