"""Chat platform adapters: each renders neutral messages for its platform and reports neutral inbound events."""
