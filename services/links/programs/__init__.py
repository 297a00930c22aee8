"""Programs and their immutable versions (each published as ``program.published``), the
program's server-to-server keys, and experiment variants."""
