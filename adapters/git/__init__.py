"""A local git clone as the code host, for teams on another forge or none: `warroom postmortem INC-7 --git PATH`.
Nothing is imported here."""
