"""Customer briefs: approved templates, who receives them and the use cases that prepare and send them.
"""
