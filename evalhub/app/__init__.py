"""Use cases: each wires the ports for one command and returns plain data to render."""
