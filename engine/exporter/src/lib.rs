//! Exporters: turn a snapshot chain and an image config into a layer tar,
//! an image archive (`docker load` or OCI layout), a directory or a stored
//! image.
//!
//! Path-level functions ([`layer::write_layer`], [`archive`],
//! [`local::materialize`]) work on plain directories and files; the
//! store-level ones ([`image_layers`], [`export`], [`store_image`]) read
//! snapshots and blobs from a [`strata_store::Store`].

pub mod archive;
mod export;
pub mod gzip;
pub mod image;
pub mod layer;
pub mod local;
pub mod output;
mod push;

pub use archive::{DestWriter, write_docker_archive, write_oci_archive};
pub use export::{
    ExportProgress, ExportReport, export, export_with_extras, image_layers, image_layers_with,
    output_layer_options, store_image, store_image_with_extras,
};
pub use image::{
    ConfigExtras, ImageBlobs, LayerBlob, build_config, build_image, build_image_with_extras,
};
pub use layer::{LayerDigests, LayerOptions, write_layer, write_layer_with, write_layers};
pub use local::materialize;
pub use output::{Compression, Dest, OutputKind, OutputSpec, OutputSpecError, normalize_name};
pub use push::{PushReport, push_image};
