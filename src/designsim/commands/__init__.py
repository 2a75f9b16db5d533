"""CLI commands of the review flow."""
