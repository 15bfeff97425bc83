"""Reports across incidents: the daily digest, response statistics and the operations read side.
"""
