//! Sources: the build context, mirrored into the store, and images from
//! the local image store.
//!
//! The context mirror is incremental: an index of every transferred file
//! (path, type, size, mtime, mode, owner, inode, content digest) lets a
//! rebuild copy and hash only the files whose metadata changed.

pub mod context;
pub mod git;
pub mod http;
pub mod image;
pub mod monitor;
pub mod watch;

pub use context::{ContextSource, TransferStats};
pub use image::{StoreImageResolver, load_image};
