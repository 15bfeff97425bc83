"""The incident core: the Incident aggregate, `/incident` command values and parser, the use cases,
reminder planning, post-mortem compilation and the neutral messages the core posts.
"""
