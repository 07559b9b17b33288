"""The running service: the composition root, the daemon, the CLI and one-shot commands."""
