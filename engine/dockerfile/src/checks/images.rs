//! Base images of each stage, resolved so the rules can read their
//! environment and platform, and the InvalidBaseImagePlatform rule.

use super::vars::GlobalScope;
use super::{CheckWarning, Rule, StageView};
use crate::ast::Node;
use crate::convert::{ConvertOptions, ImageResolver, NamedContext, ResolvedImage};
use crate::shell::Lexer;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;
use strata_llb::Platform;
use strata_llb::image::ImageConfig;

/// The starting point of a stage.
pub(super) enum Base {
    Scratch,
    /// An earlier stage, by index.
    Stage(usize),
    Image {
        name: String,
        expected: Platform,
        /// `None` when the reference did not expand or resolve; rules that
        /// need the image's environment then skip the stage.
        /// NOTE: during a build only the stages the target needs have their
        /// image resolved, so UndefinedVar skips the others.
        config: Option<ImageConfig>,
    },
}

pub(super) async fn resolve_bases(
    globals: &[&Node],
    stages: &[StageView<'_>],
    options: &ConvertOptions,
    resolver: &dyn ImageResolver,
) -> Vec<Base> {
    let scope = GlobalScope::new(globals, options);
    let lexer = Lexer::new('\\');
    let expand = |word: &str| {
        lexer
            .process_word(word, &scope.values)
            .ok()
            .map(|e| e.value)
    };
    let mut bases = Vec::with_capacity(stages.len());
    for (index, stage) in stages.iter().enumerate() {
        let image = expand(&stage.image).unwrap_or_default();
        let earlier = stages[..index].iter().position(|s| {
            s.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(&image))
        });
        let expected = stage
            .platform
            .as_deref()
            .and_then(expand)
            .and_then(|p| Platform::parse(&p))
            .unwrap_or_else(|| options.platform.clone());
        let base = if image.eq_ignore_ascii_case("scratch") {
            Base::Scratch
        } else if let Some(earlier) = earlier {
            Base::Stage(earlier)
        } else if image.is_empty() {
            Base::Image {
                name: image,
                expected,
                config: None,
            }
        } else {
            // A named context replaces the image of the same name: check
            // the image it stands for, and nothing for a directory.
            let image = match crate::convert::named_context(options, &image) {
                Some(NamedContext::Image(reference)) => reference.clone(),
                Some(NamedContext::Local { .. }) => {
                    bases.push(Base::Scratch);
                    continue;
                }
                None => image,
            };
            let config = resolver.resolve(&image, &expected).await.ok();
            Base::Image {
                name: config.as_ref().map_or(image, |r| r.name.clone()),
                expected,
                config: config.map(|r| r.config),
            }
        };
        bases.push(base);
    }
    bases
}

/// InvalidBaseImagePlatform: the resolved image is for another OS or
/// architecture than the stage builds for.
pub(super) fn check_platforms(
    stages: &[StageView<'_>],
    bases: &[Base],
    _options: &ConvertOptions,
    warnings: &mut Vec<CheckWarning>,
) {
    for (stage, base) in stages.iter().zip(bases) {
        let Base::Image {
            name,
            expected,
            config: Some(config),
        } = base
        else {
            continue;
        };
        if config.os.is_empty() || config.architecture.is_empty() {
            continue;
        }
        if config.os != expected.os || config.architecture != expected.architecture {
            let actual = format!("{}/{}", config.os, config.architecture);
            let expected_platform = format!("{}/{}", expected.os, expected.architecture);
            let message = format!(
                "Base image {name} was pulled with platform \"{actual}\", expected \"{expected_platform}\" for current build"
            );
            warnings.push(CheckWarning::at(
                Rule::InvalidBaseImagePlatform,
                stage.from,
                message,
            ));
        }
    }
}

/// Passes lookups to another resolver and keeps what it found, so the
/// checks can read the base images the conversion resolved without
/// resolving them again, or resolving those of stages the target skips.
pub(crate) struct RecordingResolver<'a> {
    inner: &'a dyn ImageResolver,
    found: Mutex<BTreeMap<String, ResolvedImage>>,
}

impl<'a> RecordingResolver<'a> {
    pub(crate) fn new(inner: &'a dyn ImageResolver) -> Self {
        RecordingResolver {
            inner,
            found: Mutex::new(BTreeMap::new()),
        }
    }

    /// Returns a resolver that returns only images already found.
    pub(crate) fn recorded(&self) -> Recorded<'_> {
        Recorded(self)
    }
}

#[async_trait]
impl ImageResolver for RecordingResolver<'_> {
    async fn resolve(&self, reference: &str, platform: &Platform) -> Result<ResolvedImage, String> {
        let resolved = self.inner.resolve(reference, platform).await?;
        self.found
            .lock()
            .expect("resolver record lock")
            .insert(reference.to_string(), resolved.clone());
        Ok(resolved)
    }
}

pub(crate) struct Recorded<'a>(&'a RecordingResolver<'a>);

#[async_trait]
impl ImageResolver for Recorded<'_> {
    async fn resolve(
        &self,
        reference: &str,
        _platform: &Platform,
    ) -> Result<ResolvedImage, String> {
        let found = self.0.found.lock().expect("resolver record lock");
        found
            .get(reference)
            .cloned()
            .ok_or_else(|| format!("`{reference}` was not resolved by the conversion"))
    }
}
