"""Domain errors raised by the repository; routes turn them into HTTP answers."""

from __future__ import annotations


class ServiceError(Exception):
    """Base: the message is meant for the user and says what to do next."""


class NotFound(ServiceError):
    pass


class Conflict(ServiceError):
    pass


class Invalid(ServiceError):
    pass


class Forbidden(ServiceError):
    pass
