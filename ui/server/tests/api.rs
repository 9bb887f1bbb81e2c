//! The server's access control, errors, project and cache API and event
//! WebSocket, against a real engine on a private store (no build runs here; the
//! browser end-to-end test in `ui/web/run-e2e.sh` runs real builds).

use futures::StreamExt;
use std::sync::Arc;
use strata_engine::{Engine, EngineOptions};
use strata_ui_server::{Server, ServerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "0123456789abcdef0123";

struct Running {
    address: std::net::SocketAddr,
    store: Arc<strata_store::Store>,
    _root: tempfile::TempDir,
}

async fn start() -> Running {
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineOptions {
        root: Some(root.path().to_path_buf()),
        max_parallel: Some(1),
        context_monitor: None,
    })
    .unwrap();
    let store = engine.store().clone();
    let options = ServerOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        assets: None,
        demos: None,
        token: Some(TOKEN.into()),
    };
    let server = Server::bind(Arc::new(engine), options).await.unwrap();
    let address = server.local_addr();
    assert_eq!(server.url(), format!("http://{address}/?token={TOKEN}"));
    tokio::spawn(server.serve(std::future::pending()));
    Running {
        address,
        store,
        _root: root,
    }
}

/// Sends one HTTP/1.1 request and returns the status and body.
async fn request(
    address: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, serde_json::Value) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut text = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    stream.write_all(text.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1;
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

fn authorized(path: &str) -> String {
    let separator = if path.contains('?') { '&' } else { '?' };
    format!("{path}{separator}token={TOKEN}")
}

#[tokio::test]
async fn missing_token_is_401() {
    let server = start().await;
    let (status, body) = request(server.address, "GET", "/api/status", &[], "").await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "missing_token");
    let (status, _) = request(server.address, "GET", "/api/status?token=wrong", &[], "").await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn token_header_is_accepted() {
    let server = start().await;
    let (status, body) = request(
        server.address,
        "GET",
        "/api/status",
        &[("x-strata-token", TOKEN)],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["running_build"], serde_json::Value::Null);
}

#[tokio::test]
async fn foreign_origin_is_403() {
    let server = start().await;
    let path = authorized("/api/status");
    let (status, body) = request(
        server.address,
        "GET",
        &path,
        &[("Origin", "http://evil.test")],
        "",
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(body["code"], "forbidden_origin");
    let own = format!("http://localhost:{}", server.address.port());
    let (status, _) = request(server.address, "GET", &path, &[("Origin", &own)], "").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn open_project_lists_stages() {
    let server = start().await;
    let project = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("Dockerfile"),
        "# Base.\nFROM busybox AS base\nARG N=1\nFROM base\n",
    )
    .unwrap();
    let body = serde_json::json!({ "path": project.path() }).to_string();
    let headers = [("Content-Type", "application/json")];
    let path = authorized("/api/projects/open");
    let (status, response) = request(server.address, "POST", &path, &headers, &body).await;
    assert_eq!(status, 200, "{response}");
    let file = &response["project"]["dockerfiles"][0];
    assert_eq!(file["stages"][0]["name"], "base");
    assert_eq!(file["stages"][0]["description"], "Base.");
    assert_eq!(file["args"][0]["default"], "1");
    assert_eq!(response["settings"]["no_cache"], false);
}

#[tokio::test]
async fn bad_inputs_name_the_value() {
    let server = start().await;
    let headers = [("Content-Type", "application/json")];
    let open = authorized("/api/projects/open");
    let (status, body) = request(
        server.address,
        "POST",
        &open,
        &headers,
        r#"{"path":"relative/dir"}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("`relative/dir`"));

    let build = authorized("/api/builds");
    let body = r#"{"project":"/nonexistent/strata-ui"}"#;
    let (status, response) = request(server.address, "POST", &build, &headers, body).await;
    assert_eq!(status, 404);
    assert!(
        response["message"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/strata-ui")
    );

    let project = tempfile::tempdir().unwrap();
    let body = serde_json::json!({ "project": project.path(), "dockerfile": "../Dockerfile" });
    let (status, response) =
        request(server.address, "POST", &build, &headers, &body.to_string()).await;
    assert_eq!(status, 400, "{response}");

    let (status, body) = request(
        server.address,
        "GET",
        &authorized("/api/history/nope"),
        &[],
        "",
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "not_found");

    let (status, _) = request(
        server.address,
        "POST",
        &authorized("/api/builds/cancel"),
        &[],
        "",
    )
    .await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn websocket_sends_snapshot_first() {
    let server = start().await;
    let url = format!("ws://{}/api/events?token={TOKEN}", server.address);
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let frame = socket.next().await.unwrap().unwrap();
    let messages: serde_json::Value = serde_json::from_str(frame.to_text().unwrap()).unwrap();
    assert_eq!(messages[0]["type"], "snapshot");
    assert_eq!(messages[0]["running"], false);
    assert_eq!(messages[0]["counts"]["total"], 0);
}

#[tokio::test]
async fn websocket_without_token_is_rejected() {
    let server = start().await;
    let url = format!("ws://{}/api/events", server.address);
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
}

/// Commits a snapshot of `size` bytes and ends this process's claim on it,
/// as a finished build would.
fn snapshot(store: &Arc<strata_store::Store>, parent: Option<&str>, size: usize) -> String {
    let active = store
        .prepare(parent, strata_store::SnapshotKind::Regular)
        .unwrap();
    std::fs::write(active.upper.join("data"), vec![b'x'; size]).unwrap();
    let id = store.commit(active).unwrap();
    let lease = store.lease(None).unwrap();
    lease.add(&id).unwrap();
    lease.release().unwrap();
    id
}

const JSON: &[(&str, &str)] = &[("Content-Type", "application/json")];

#[tokio::test]
async fn cache_du_lists_records() {
    let server = start().await;
    let parent = snapshot(&server.store, None, 10);
    let child = snapshot(&server.store, Some(&parent), 20);

    let (status, body) =
        request(server.address, "GET", &authorized("/api/cache/du"), &[], "").await;
    assert_eq!(status, 200, "{body}");
    let records = body["records"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(body["total"], 30);
    assert_eq!(body["reclaimable"], 30);
    let first = records.iter().find(|r| r["id"] == parent).unwrap();
    assert_eq!(first["type"], "regular");
    assert_eq!(first["size"], 10);
    assert_eq!(first["shared"], true);
    assert_eq!(first["pinned"], false);
    assert!(first["in_use"].is_null());
    assert!(first["created"].is_string());
    assert!(first["last_used"].is_string());
    assert!(first["use_count"].is_u64());
    assert!(first["builds"].is_array());
    assert!(records.iter().any(|r| r["id"] == child));
}

#[tokio::test]
async fn cache_prune_dry_run_keeps_everything() {
    let server = start().await;
    let kept = snapshot(&server.store, None, 10);
    let doomed = snapshot(&server.store, None, 20);
    server.store.set_pinned(&kept, true).unwrap();

    let (status, body) = request(
        server.address,
        "POST",
        &authorized("/api/cache/prune"),
        JSON,
        r#"{"dry_run": true}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["dry_run"], true);
    assert_eq!(body["reclaimed"], 20);
    assert_eq!(body["deleted"][0]["id"], doomed);
    assert_eq!(body["kept"][0]["id"], kept);
    assert_eq!(body["kept"][0]["kept"]["reason"], "pinned");
    assert_eq!(server.store.disk_usage().unwrap().len(), 2);
}

#[tokio::test]
async fn cache_prune_deletes_with_filters() {
    let server = start().await;
    let old = snapshot(&server.store, None, 10);
    let other = snapshot(&server.store, None, 20);
    let body = format!(r#"{{"filters": ["id~={}"]}}"#, &old[..12]);

    let (status, response) = request(
        server.address,
        "POST",
        &authorized("/api/cache/prune"),
        JSON,
        &body,
    )
    .await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["dry_run"], false);
    assert_eq!(response["deleted"][0]["id"], old);
    assert_eq!(response["kept"][0]["kept"]["reason"], "not_matched");
    let left = server.store.disk_usage().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, other);
}

#[tokio::test]
async fn cache_prune_rejects_bad_options() {
    let server = start().await;
    let id = snapshot(&server.store, None, 10);
    for (body, field) in [
        (r#"{"keep_duration": "soon"}"#, "keep_duration"),
        (r#"{"keep_storage": "lots"}"#, "keep_storage"),
        (r#"{"min_free_space": "200%"}"#, "min_free_space"),
        (r#"{"filters": ["colour==red"]}"#, "filters"),
    ] {
        let (status, response) = request(
            server.address,
            "POST",
            &authorized("/api/cache/prune"),
            JSON,
            body,
        )
        .await;
        assert_eq!(status, 400, "{body}: {response}");
        assert_eq!(response["code"], "bad_request");
        let message = response["message"].as_str().unwrap();
        assert!(message.contains(&format!("`{field}`")), "{message}");
    }
    assert_eq!(server.store.disk_usage().unwrap()[0].id, id);
}

#[tokio::test]
async fn cache_pin_and_unpin() {
    let server = start().await;
    let id = snapshot(&server.store, None, 10);
    let body = format!(r#"{{"id": "{}", "pinned": true}}"#, &id[..12]);

    let (status, response) = request(
        server.address,
        "POST",
        &authorized("/api/cache/pin"),
        JSON,
        &body,
    )
    .await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["record"]["id"], id);
    assert_eq!(response["record"]["pinned"], true);
    assert!(server.store.disk_usage().unwrap()[0].pinned);

    let body = format!(r#"{{"id": "{id}", "pinned": false}}"#);
    let (status, response) = request(
        server.address,
        "POST",
        &authorized("/api/cache/pin"),
        JSON,
        &body,
    )
    .await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["record"]["pinned"], false);
    assert!(!server.store.disk_usage().unwrap()[0].pinned);
}

#[tokio::test]
async fn cache_pin_rejects_bad_ids() {
    let server = start().await;
    snapshot(&server.store, None, 10);
    for (id, status, code) in [
        ("", 400, "bad_request"),
        ("xyz", 400, "bad_request"),
        ("0000000000000000", 404, "not_found"),
    ] {
        let body = format!(r#"{{"id": "{id}", "pinned": true}}"#);
        let (actual, response) = request(
            server.address,
            "POST",
            &authorized("/api/cache/pin"),
            JSON,
            &body,
        )
        .await;
        assert_eq!(actual, status, "{id}: {response}");
        assert_eq!(response["code"], code);
    }
    assert!(!server.store.disk_usage().unwrap()[0].pinned);
}
