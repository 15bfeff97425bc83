"""Alert intake: rules that map alerts to a level and an action, and the use case that declares or proposes.
"""
