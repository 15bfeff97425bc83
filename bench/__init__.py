"""warroom benchmarks (GitHub issue 5): `python -m bench [--quick] [--scenario NAME ...]`.

Not part of the test suite. The driver (`bench.run`) starts the real `warroom serve` as a subprocess against a
fake Slack Web API (`bench.fake_slack`, its own process), drives it with signed Slack requests from a load
process (`bench.load`) and compares it with a bare slack-bolt app (`bench.bare_bolt`) in the same run.
See bench/README.md.
"""
