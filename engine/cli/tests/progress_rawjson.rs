mod progress_support;

use progress_support::successful_build;
use strata_cli::progress::ProgressMode;
use strata_solver::events::StampedEvent;

#[tokio::test]
async fn rawjson_writes_one_event_a_line() {
    let script = successful_build();
    let (output, summary) = script.render(ProgressMode::RawJson).await;
    insta::assert_snapshot!(output);

    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), script.events.len());
    for (line, event) in lines.iter().zip(&script.events) {
        assert_eq!(*line, serde_json::to_string(event).unwrap());
        let parsed: StampedEvent = serde_json::from_str(line).unwrap();
        assert_eq!(&parsed, event);
    }
    assert_eq!(summary.ran, 4);
}

#[tokio::test]
async fn quiet_prints_nothing() {
    let (output, summary) = successful_build().render(ProgressMode::Quiet).await;
    assert_eq!(output, "");
    assert_eq!(summary.total, 5);
    assert_eq!(summary.cached, 1);
}
