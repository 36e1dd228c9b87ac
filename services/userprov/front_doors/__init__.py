"""What userprov's web front doors (the invitation page, SCIM) share: staying connected to the
bus, the access log, the HTTP server."""
