"""Development tools beside userprov, not part of the workers' image: the demo, the benchmark,
a bus client that publishes and records messages, and a mail catcher."""
