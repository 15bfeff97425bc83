"""Getting messages out and time moving: the outbox sender, group commits and the reminder ticker.
"""
