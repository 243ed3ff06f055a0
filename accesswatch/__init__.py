"""accesswatch: watches who reads customer data, and raises the alarm on unusual reads."""

__version__ = "0.1.0"
