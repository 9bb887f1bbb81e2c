mod progress_support;

use progress_support::{CONFIGURE, CONFIGURE_ERROR, FAILED_DOCKERFILE, failed_build};
use strata_cli::progress::{FAILURE_LOG_LINES, ProgressMode, render_failure};

#[tokio::test]
async fn failure_block_shows_last_log_lines() {
    let (_, summary) = failed_build().render(ProgressMode::Quiet).await;
    let failure = summary.failure.as_ref().expect("the build failed");
    assert_eq!(failure.name, CONFIGURE);
    assert_eq!(failure.error, CONFIGURE_ERROR);
    assert_eq!(failure.last_logs.len(), FAILURE_LOG_LINES);
    assert_eq!(failure.last_logs[0].text, "checking for feature 6... yes");
    assert_eq!(
        failure.last_logs[19].text,
        "configure: error: missing libfoo"
    );

    let block = render_failure(&summary, Some(FAILED_DOCKERFILE));
    insta::assert_snapshot!(block);
}

#[tokio::test]
async fn failure_block_without_source() {
    let (_, summary) = failed_build().render(ProgressMode::Quiet).await;
    let block = render_failure(&summary, None);
    assert!(
        block.starts_with("------\n > [build 2/3] RUN ./configure && make:\n"),
        "{block}"
    );
    assert!(block.ends_with("missing libfoo\n------\n"), "{block}");
}
