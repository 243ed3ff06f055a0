"""Configuration: ``default.toml`` beside this file, merged with overrides, validated."""

from configs.loader import DEFAULT_CONFIG, load_settings

__all__ = ["DEFAULT_CONFIG", "load_settings"]
