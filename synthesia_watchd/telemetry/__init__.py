"""What the daemon tells the outside: structured logs, Prometheus metrics, systemd notify."""
