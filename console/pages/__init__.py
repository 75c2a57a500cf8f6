"""The console's pages: login, events, dead letters, health; each module gives its routes."""
