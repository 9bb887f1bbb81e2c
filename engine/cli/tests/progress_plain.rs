mod progress_support;

use progress_support::{failed_build, successful_build};
use strata_cli::progress::ProgressMode;

#[tokio::test]
async fn plain_successful_build() {
    let (output, summary) = successful_build().render(ProgressMode::Plain).await;
    insta::assert_snapshot!(output);

    assert_eq!(summary.total, 5);
    assert_eq!(summary.cached, 1);
    assert_eq!(summary.ran, 4);
    assert_eq!(summary.failed, 0);
    assert_eq!(summary.success, Some(true));
    assert_eq!(summary.failure, None);
}

#[tokio::test]
async fn plain_failed_build() {
    let (output, summary) = failed_build().render(ProgressMode::Plain).await;
    insta::assert_snapshot!(output);

    assert_eq!(summary.total, 4);
    assert_eq!(summary.cached, 1);
    assert_eq!(summary.failed, 1);
    assert_eq!(summary.canceled, 1);
    assert_eq!(summary.success, Some(false));
}

#[tokio::test]
async fn plain_prints_every_log_line() {
    let (output, _) = failed_build().render(ProgressMode::Plain).await;
    let feature_lines = output
        .lines()
        .filter(|line| line.contains("checking for feature"))
        .count();
    assert_eq!(feature_lines, 24);
    assert!(
        output.contains("configure: error: missing libfoo\n"),
        "{output}"
    );
}
