"""GitHub as warroom's code host: REST via httpx (branches, contents, pull requests, issues) and signed webhooks.

Nothing is imported on import; the composition root imports `adapters.github.client` when a repository is set.
"""
