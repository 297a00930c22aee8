"""The sections of a program version, one module per owning service. Each service reads the
section it owns from ``program.published``; links validates them all when a version is written."""
