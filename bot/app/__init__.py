"""The application shell: settings, the composition root and the command line. Only this package wires
adapters and storage in.
"""
