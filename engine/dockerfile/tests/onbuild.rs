//! ONBUILD triggers: stored with their heredoc bodies, run in the stage
//! that uses the image, and cleared after they run.

mod common;

use common::*;

#[test]
fn heredoc_trigger_keeps_body() {
    let conversion =
        convert_text("FROM busybox\nONBUILD RUN <<EOF\necho \"hello world\" >> /dest\nEOF\n")
            .unwrap();
    assert_eq!(
        conversion.image_config.config.on_build,
        Some(vec!["RUN <<EOF\necho \"hello world\" >> /dest\nEOF".to_string()])
    );
}

#[test]
fn onbuild_declared_in_stage_is_kept() {
    let conversion = convert_text("FROM busybox\nONBUILD RUN touch /x\n").unwrap();
    assert_eq!(
        conversion.image_config.config.on_build,
        Some(vec!["RUN touch /x".to_string()])
    );
    assert!(execs(&conversion).is_empty(), "a trigger does not run in its own stage");
}
