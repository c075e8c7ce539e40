"""A module no recording may make apirecorder import: the matrix fails if it is ever loaded."""


class Boom(Exception):
    """Named by hostile ``__type__`` and exception values."""
