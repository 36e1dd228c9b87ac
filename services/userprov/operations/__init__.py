"""Tools for operators, run from the `userprov` command next to the workers."""
