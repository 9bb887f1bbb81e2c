//! A private Distribution registry (Debian's `docker-registry`) on
//! 127.0.0.1 for end-to-end tests: plain HTTP, or TLS from a test CA with
//! htpasswd auth. Each one has its own storage and stops on drop.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "strata";
pub const PASSWORD: &str = "s3cret-pass";

pub struct TestRegistry {
    /// `127.0.0.1:PORT`.
    pub host: String,
    pub dir: tempfile::TempDir,
    pub tls: bool,
    child: Option<Child>,
}

impl TestRegistry {
    /// Starts a registry that speaks plain HTTP and needs no login.
    pub fn plain() -> TestRegistry {
        TestRegistry::start(false)
    }

    /// Starts a registry with TLS from a fresh test CA and htpasswd auth
    /// for [`USER`] / [`PASSWORD`].
    pub fn tls_auth() -> TestRegistry {
        TestRegistry::start(true)
    }

    fn start(tls: bool) -> TestRegistry {
        let dir = tempfile::Builder::new()
            .prefix("strata-registry-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
            dir.path().join("data").display()
        );
        if tls {
            make_certificates(dir.path(), &host);
            make_htpasswd(dir.path());
            config.push_str(&format!(
                "  tls:\n    certificate: {0}/server.crt\n    key: {0}/server.key\nauth:\n  htpasswd:\n    realm: strata-test\n    path: {0}/htpasswd\n",
                dir.path().display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("`docker-registry` is missing: install Debian's `docker-registry`");
        let registry = TestRegistry {
            host,
            dir,
            tls,
            child: Some(child),
        };
        registry.wait_ready();
        registry
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect(&self.host).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "registry on {} did not start; its log:\n{}",
            self.host,
            std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
        );
    }

    /// Stops the registry, so later requests fail to connect.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Directory in the layout of `/etc/docker/certs.d`, for
    /// `STRATA_REGISTRY_CERTS_DIR` and skopeo's `--cert-dir`.
    pub fn certs_dir(&self) -> PathBuf {
        self.dir.path().join("certs.d")
    }

    /// A Docker config directory whose `config.json` logs in as `user`.
    pub fn docker_config(&self, user: &str, password: &str) -> PathBuf {
        let dir = self
            .dir
            .path()
            .join(format!("docker-config-{user}-{}", password.len()));
        std::fs::create_dir_all(&dir).unwrap();
        let auth = base64_encode(format!("{user}:{password}").as_bytes());
        let config = serde_json::json!({ "auths": { &self.host: { "auth": auth } } });
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
        dir
    }

    /// Runs `skopeo` with this registry's TLS and login settings.
    pub fn skopeo(&self, args: &[&str]) -> std::process::Output {
        let mut command = Command::new("skopeo");
        command.arg(args[0]);
        if self.tls {
            command
                .arg("--cert-dir")
                .arg(self.certs_dir().join(&self.host))
                .arg("--creds")
                .arg(format!("{USER}:{PASSWORD}"));
        } else {
            command.arg("--tls-verify=false");
        }
        command.args(&args[1..]).output().unwrap()
    }

    /// Returns `skopeo inspect --raw` of `repository:tag` as JSON.
    pub fn raw_manifest(&self, image: &str) -> serde_json::Value {
        let output = self.skopeo(&[
            "inspect",
            "--raw",
            &format!("docker://{}/{image}", self.host),
        ]);
        assert!(
            output.status.success(),
            "skopeo inspect failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn run(command: &mut Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Writes a CA, a server certificate for 127.0.0.1 signed by it, and the
/// CA as `certs.d/HOST/ca.crt`.
fn make_certificates(dir: &Path, host: &str) {
    let path = |name: &str| dir.join(name).display().to_string();
    run(Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=strata test CA",
        "-keyout",
        &path("ca.key"),
        "-out",
        &path("ca.crt"),
    ]));
    run(Command::new("openssl").args([
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &path("server.key"),
        "-out",
        &path("server.csr"),
    ]));
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(Command::new("openssl").args([
        "x509",
        "-req",
        "-in",
        &path("server.csr"),
        "-CA",
        &path("ca.crt"),
        "-CAkey",
        &path("ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &path("san.ext"),
        "-out",
        &path("server.crt"),
    ]));
    let host_dir = dir.join("certs.d").join(host);
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::copy(dir.join("ca.crt"), host_dir.join("ca.crt")).unwrap();
}

fn make_htpasswd(dir: &Path) {
    let output = Command::new("htpasswd")
        .args(["-Bbn", USER, PASSWORD])
        .output()
        .expect("`htpasswd` is missing: install Debian's `apache2-utils`");
    assert!(output.status.success());
    std::fs::write(dir.join("htpasswd"), output.stdout).unwrap();
}

fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
