use super::*;
use crate::record::RequestSummary;
use std::collections::BTreeMap;
use std::sync::Arc;

fn open() -> (tempfile::TempDir, HistoryDb) {
    let dir = tempfile::tempdir().unwrap();
    let db = HistoryDb::open(&dir.path().join("metadata.db")).unwrap();
    (dir, db)
}

fn record(id: &str, seconds_ago: i64) -> BuildRecord {
    let mut record = BuildRecord::new(
        id,
        RequestSummary {
            context: "/ctx".into(),
            dockerfile: "Dockerfile".into(),
            ..Default::default()
        },
    );
    record.started = Utc::now() - chrono::Duration::seconds(seconds_ago);
    record.status = BuildStatus::Succeeded;
    record
}

#[test]
fn offsets_count_back_from_newest() {
    let (_dir, mut db) = open();
    for (id, ago) in [("aaa", 30), ("bbb", 20), ("ccc", 10)] {
        db.finish(&record(id, ago), &[]).unwrap();
    }
    assert_eq!(db.resolve("^0").unwrap().id, "ccc");
    assert_eq!(db.resolve("^1").unwrap().id, "bbb");
    assert_eq!(db.resolve("b").unwrap().id, "bbb");
    assert!(db.resolve("^9").unwrap_err().to_string().contains("^9"));
    assert_eq!(db.previous(&record("ddd", 0)).unwrap().unwrap().id, "ccc");
}

#[test]
fn retention_keeps_pinned_records() {
    let (_dir, mut db) = open();
    for (id, ago) in [("old", 100), ("mid", 50), ("new", 10)] {
        db.finish(&record(id, ago), &[]).unwrap();
    }
    db.set_pinned("old", true).unwrap();
    let removed = db
        .apply_retention(
            Retention {
                max_age: None,
                max_count: Some(1),
            },
            Utc::now(),
        )
        .unwrap();
    assert_eq!(removed, 1);
    let ids: Vec<String> = db.list().unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, ["new", "old"]);
}

#[test]
fn export_import_round_trip() {
    let (_dir, mut db) = open();
    let event = StampedEvent {
        v: 1,
        time: Utc::now(),
        event: strata_solver::Event::Warning {
            message: "w".into(),
            location: None,
        },
    };
    db.finish(&record("abc", 5), &[event.clone()]).unwrap();
    let mut file = Vec::new();
    db.export("abc", &mut file).unwrap();
    let (_other_dir, mut other) = open();
    assert_eq!(other.import(file.as_slice()).unwrap(), "abc");
    assert_eq!(other.events("abc").unwrap(), vec![event]);
    let again = other.import(file.as_slice()).unwrap_err().to_string();
    assert!(again.contains("already in the history"), "{again}");
    assert!(other.import(&b"not gzip"[..]).is_err());
}

#[test]
fn dead_running_build_is_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metadata.db");
    {
        let db = HistoryDb::open(&path).unwrap();
        let mut running = record("run", 1);
        running.status = BuildStatus::Running;
        db.put(&running).unwrap();
        db.connection
            .execute("UPDATE history_builds SET pid = 999999999", [])
            .unwrap();
    }
    let db = HistoryDb::open(&path).unwrap();
    assert_eq!(
        db.get("run").unwrap().unwrap().status,
        BuildStatus::Interrupted
    );
}

fn gzip_json(value: serde_json::Value) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    serde_json::to_writer(&mut encoder, &value).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn import_rejects_bad_files() {
    let (_dir, mut db) = open();
    let cases = [
        (b"not gzip".to_vec(), "expected a gzip-compressed file"),
        (
            gzip_json(serde_json::json!({ "format": "other" })),
            "`format` field",
        ),
        (
            gzip_json(serde_json::json!({ "format": "strata-build-record", "version": 9 })),
            "version `9`",
        ),
        (
            gzip_json(serde_json::json!({
                "format": "strata-build-record", "version": 1, "record": { "id": 3 }, "events": []
            })),
            "`record` field",
        ),
    ];
    for (bytes, expected) in cases {
        let error = format!("{:#}", db.import(bytes.as_slice()).unwrap_err());
        assert!(error.contains(expected), "`{error}` lacks `{expected}`");
    }
    assert!(db.list().unwrap().is_empty());
}

#[test]
fn events_without_logs_skips_log_output() {
    let (_dir, mut db) = open();
    let vertex = strata_llb::Digest::of_bytes(b"step");
    let events: Vec<StampedEvent> = [
        strata_solver::Event::VertexStarted {
            vertex: vertex.clone(),
        },
        strata_solver::Event::Log {
            vertex: vertex.clone(),
            stream: strata_solver::LogStream::Stdout,
            data: "output\n".into(),
        },
    ]
    .into_iter()
    .map(|event| StampedEvent {
        v: 1,
        time: Utc::now(),
        event,
    })
    .collect();
    db.finish(&record("abc", 5), &events).unwrap();
    assert_eq!(db.events("abc").unwrap().len(), 2);
    assert_eq!(db.events_without_logs("abc").unwrap(), events[..1]);
}

#[test]
fn bad_references_name_themselves() {
    let (_dir, mut db) = open();
    for id in ["abc1", "abc2"] {
        db.finish(&record(id, 5), &[]).unwrap();
    }
    for reference in ["zzz", "abc", "^x", "^5", ""] {
        let error = db.resolve(reference).unwrap_err().to_string();
        assert!(error.contains(&format!("`{reference}`")) || reference.is_empty());
        assert!(error.contains("strata history ls"), "{error}");
    }
}

fn context_rows(db: &HistoryDb) -> i64 {
    db.connection
        .query_row("SELECT count(*) FROM history_context_files", [], |row| {
            row.get(0)
        })
        .unwrap()
}

#[test]
fn context_files_stored_once() {
    let (_dir, mut db) = open();
    let files: Arc<BTreeMap<String, String>> = Arc::new(
        (0..100)
            .map(|i| (format!("src/file{i}"), format!("sha256:{i:064x}")))
            .collect(),
    );
    for (id, ago) in [("aaa", 30), ("bbb", 20)] {
        let mut build = record(id, ago);
        build.context_files = files.clone();
        db.finish(&build, &[]).unwrap();
    }
    assert_eq!(context_rows(&db), 1, "equal lists were stored twice");
    // The key is the sha256 of the list's JSON, as earlier versions stored it.
    let json = serde_json::to_string(&*files).unwrap();
    let key: String = db
        .connection
        .query_row("SELECT key FROM history_context_files", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(
        key,
        strata_llb::Digest::of_bytes(json.as_bytes()).to_string()
    );
    let stored: String = db
        .connection
        .query_row(
            "SELECT record FROM history_builds WHERE id = 'bbb'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(
        !stored.contains("src/file1"),
        "the record kept its file list"
    );
    assert_eq!(db.get("aaa").unwrap().unwrap().context_files, files);
    assert_eq!(db.resolve("^0").unwrap().context_files, files);
    let later = record("ccc", 10);
    assert_eq!(db.previous(&later).unwrap().unwrap().context_files, files);
}

#[test]
fn removing_last_record_drops_context_files() {
    let (_dir, mut db) = open();
    let mut first = record("aaa", 30);
    first.context_files = Arc::new(BTreeMap::from([("a".into(), "sha256:1".into())]));
    let mut second = record("bbb", 20);
    second.context_files = Arc::new(BTreeMap::from([("b".into(), "sha256:2".into())]));
    db.finish(&first, &[]).unwrap();
    db.finish(&second, &[]).unwrap();
    assert_eq!(context_rows(&db), 2);
    db.remove("aaa").unwrap();
    assert_eq!(context_rows(&db), 1);
    assert_eq!(
        db.get("bbb").unwrap().unwrap().context_files,
        second.context_files
    );
}
