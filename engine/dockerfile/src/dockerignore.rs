//! `.dockerignore` parsing and matching.
