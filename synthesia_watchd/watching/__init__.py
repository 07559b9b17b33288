"""Drop-folder watching: the watchdog observers, catch-up scans and root health."""
