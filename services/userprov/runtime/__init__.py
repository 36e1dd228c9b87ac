"""The AMQP edge and transactional plumbing shared by all four services."""
