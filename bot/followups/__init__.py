"""Follow-ups where the code lives: what a post-mortem pull request and a drafted scenario playbook contain
(`values`), and the use case that publishes them through the outbox to a `CodeHost` (`service`)."""
