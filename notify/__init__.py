"""Notifiers: where alerts go to reach people (console, file, and later paging services)."""
