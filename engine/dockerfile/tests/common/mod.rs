//! Shared helpers for conversion tests: a fixed-image resolver and a
//! one-call conversion of Dockerfile text.

#![allow(dead_code, reason = "each test file uses a different subset")]

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;
use strata_dockerfile::convert::{
    self, Conversion, ConvertError, ConvertOptions, ImageResolver, ResolvedImage,
    normalize_reference,
};
use strata_llb::image::{ContainerConfig, ImageConfig};
use strata_llb::{Digest, Platform};

/// Resolves every reference to a busybox-like config (Env PATH, Cmd
/// `["sh"]`) with a digest derived from the normalised name, and records
/// each request. Extra images can be registered by name.
#[derive(Default)]
pub struct FixedResolver {
    pub requests: Mutex<Vec<String>>,
    pub images: BTreeMap<String, ImageConfig>,
}

pub fn busybox_config() -> ImageConfig {
    ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        config: ContainerConfig {
            env: Some(vec![
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ]),
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[async_trait]
impl ImageResolver for FixedResolver {
    async fn resolve(
        &self,
        reference: &str,
        _platform: &Platform,
    ) -> Result<ResolvedImage, String> {
        self.requests.lock().unwrap().push(reference.to_string());
        let name = normalize_reference(reference)?;
        if name.contains("nosuchtag") {
            return Err(format!("`{name}` not found"));
        }
        let config = self
            .images
            .get(reference)
            .cloned()
            .unwrap_or_else(busybox_config);
        Ok(ResolvedImage {
            digest: Digest::of_bytes(name.as_bytes()),
            name,
            config,
        })
    }
}

pub fn options() -> ConvertOptions {
    ConvertOptions {
        platform: Platform::parse("linux/amd64").unwrap(),
        ..ConvertOptions::default()
    }
}

pub fn options_with_args(args: &[(&str, &str)]) -> ConvertOptions {
    let mut options = options();
    options.build_args = args
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    options
}

/// Parses and converts `text` with `options` and the fixed resolver.
pub fn convert_with(
    text: &str,
    options: &ConvertOptions,
    resolver: &FixedResolver,
) -> Result<Conversion, ConvertError> {
    let ast = strata_dockerfile::parser::parse(text).expect("test Dockerfile parses");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(convert::convert(&ast, options, resolver))
}

pub fn convert_text(text: &str) -> Result<Conversion, ConvertError> {
    convert_with(text, &options(), &FixedResolver::default())
}

pub fn case_dockerfile(id: &str) -> String {
    let path = format!(
        "{}/../../tests/cases/semantics/cases/{id}/Dockerfile",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading `{path}`: {e}"))
}

/// Returns the env of the target config as a map.
pub fn env_map(conversion: &Conversion) -> BTreeMap<String, String> {
    conversion
        .image_config
        .config
        .env
        .iter()
        .flatten()
        .map(|e| {
            let (k, v) = e.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Returns the args and env of every exec op, in definition order.
pub fn execs(conversion: &Conversion) -> Vec<(Vec<String>, Vec<String>)> {
    conversion
        .definition
        .vertices
        .values()
        .filter_map(|v| match &v.op {
            strata_llb::Op::Exec(exec) => Some((exec.meta.args.clone(), exec.meta.env.clone())),
            _ => None,
        })
        .collect()
}
