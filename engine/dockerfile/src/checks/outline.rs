//! `--call outline` and `--call targets`.
