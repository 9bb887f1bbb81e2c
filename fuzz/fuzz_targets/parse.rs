//! Parses arbitrary text as a Dockerfile and, when it parses, converts it
//! with a resolver that answers every image, runs the build checks, builds
//! the `--call` outline and renders any error. None of it may panic.

#![no_main]

use async_trait::async_trait;
use libfuzzer_sys::fuzz_target;
use strata_dockerfile::checks::{diagnostic, outline};
use strata_dockerfile::convert::{self, ConvertOptions, ImageResolver, ResolvedImage};
use strata_llb::Platform;
use strata_llb::image::ImageConfig;

struct AnyImage;

#[async_trait]
impl ImageResolver for AnyImage {
    async fn resolve(&self, reference: &str, platform: &Platform) -> Result<ResolvedImage, String> {
        if reference.contains("missing") {
            return Err(format!("Image `{reference}` is not in the local store"));
        }
        let mut config = ImageConfig {
            os: platform.os.clone(),
            architecture: platform.architecture.clone(),
            ..ImageConfig::default()
        };
        config.config.env = Some(vec!["PATH=/bin".into()]);
        Ok(ResolvedImage {
            name: reference.to_string(),
            digest: strata_llb::Digest::of_bytes(reference.as_bytes()),
            config,
        })
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(ast) = strata_dockerfile::parser::parse(text) else {
        return;
    };
    let _ = outline::targets(&ast, text);
    let _ = outline::outline(&ast, text, None);
    let options = ConvertOptions {
        platform: Platform::parse("linux/amd64").expect("valid platform"),
        excludes: vec!["*.secret".into()],
        ..ConvertOptions::default()
    };
    match futures::executor::block_on(convert::convert(&ast, &options, &AnyImage)) {
        Ok(_) => {}
        Err(error) => {
            let _ = format!("{:?}", error.to_diagnostic(text));
        }
    }
    if let Ok(report) = futures::executor::block_on(convert::check(&ast, &options, &AnyImage)) {
        let _ = diagnostic::render_check_report(&report, "Dockerfile", text);
    }
});
