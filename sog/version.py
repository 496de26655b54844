"""The package version, in one place (the package front, the CLI and the files sog writes name it)."""

__version__ = "0.1.0"
