"""Operators on their phones: the allowed numbers and the desk that runs their commands.
"""
