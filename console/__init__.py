"""The web console: events, dead letters and health, for an operator, on a port apart from the receiver's."""
