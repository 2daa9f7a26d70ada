"""``scripts/bench``: dnsperf against peer53 and reference servers on one zone and one query mix.

Run it as ``./scripts/bench`` (or ``python -m scripts.benchlib`` from the repository root);
``--help`` lists the options. Not part of the installed distribution.
"""
