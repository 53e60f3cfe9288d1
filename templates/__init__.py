"""Jinja templates of the lifecycle script, the AWS profile and the Git settings."""
