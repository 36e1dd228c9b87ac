"""userprov's four workers, their shared runtime, and the `userprov` command."""
