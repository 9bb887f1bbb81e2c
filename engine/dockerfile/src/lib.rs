//! The Dockerfile frontend: the line parser ([`parser`]), variable
//! expansion ([`shell`]), typed instructions, build checks and the
//! conversion of a Dockerfile into an LLB definition plus an image config.
//!
//! This crate depends on `strata-llb` only; it never reads the build
//! context or the store, and learns about base images through
//! [`convert::ImageResolver`].

pub mod ast;
pub mod checks;
pub mod convert;
pub mod dockerignore;
pub mod dump;
pub mod instructions;
pub mod parser;
pub mod shell;
