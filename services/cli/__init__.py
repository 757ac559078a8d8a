"""The `elm` command: the single entry point for users."""
