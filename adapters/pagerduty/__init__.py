"""PagerDuty: pages through the Events API v2 and acknowledgements back from signed v3 webhooks."""
