//! Snapshots of whole conversions: the definition JSON (digests are
//! deterministic) and the image config.

mod common;

use common::*;

/// Converts `text` and renders the definition and config for a snapshot.
fn snapshot(text: &str) -> String {
    let conversion = convert_text(text).unwrap();
    conversion.definition.validate().unwrap();
    format!(
        "{}\n---\n{}",
        conversion.definition.to_json(),
        serde_json::to_string_pretty(&conversion.image_config).unwrap()
    )
}

#[test]
fn multi_stage_build() {
    insta::assert_snapshot!(snapshot(
        "FROM busybox AS build\nWORKDIR /src\nCOPY main.c .\nRUN cc main.c\nFROM scratch\nCOPY --from=build /src/a.out /app\nCMD [\"/app\"]\n"
    ));
}

#[test]
fn heredoc_run_and_copy() {
    insta::assert_snapshot!(snapshot(
        "FROM busybox\nRUN <<EOF\n#!/bin/sh\necho hi\nEOF\nCOPY <<EOF /etc/motd\nhello $HOME\nEOF\n"
    ));
}

#[test]
fn target_prunes_unused_stages() {
    let resolver = FixedResolver::default();
    let mut options = options();
    options.target = Some("small".into());
    let text = "FROM nosuchtag:x AS big\nRUN make\nFROM busybox AS small\nCOPY a /a\n";
    let conversion = convert_with(text, &options, &resolver).unwrap();
    assert_eq!(*resolver.requests.lock().unwrap(), ["busybox"]);
    assert_eq!(conversion.stages.len(), 2);
    let source = conversion
        .definition
        .vertices
        .values()
        .find_map(|v| match &v.op {
            strata_llb::Op::Source(s) if s.identifier.starts_with("local://") => Some(s.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(source.attrs["local.followpaths"], "[\"a\"]");
}
