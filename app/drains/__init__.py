"""Drains (https, otlp, s3) and notification recipients."""
