//! A client for the OCI distribution API: reference handling, credentials
//! from Docker's `config.json`, token and basic auth, manifest and blob
//! transfers, and pulling images into the local store.
//!
//! Plain HTTP is used only for loopback hosts the caller allows
//! ([`RegistryOptions::allow_insecure`]); everything else is HTTPS with the
//! system's roots plus per-host CA files.

pub mod auth;
mod blob;
pub mod client;
pub mod layout;
pub mod manifest;
pub mod progress;
pub mod pull;
pub mod reference;
pub mod state;

pub use client::{RegistryClient, RegistryOptions};
pub use progress::{LayerProgress, LayerStatus, ProgressFn, no_progress};
pub use pull::{
    Pulled, fetch_blob, fetch_blob_reporting, find_layer_snapshot, pull_image,
    pull_image_reporting, unpack_chain, unpack_chain_reporting, unpack_layer,
    unpack_layer_reporting,
};
pub use reference::Reference;
pub use state::{RegistryState, ResolvedTag, resolve_ttl_from_env};
