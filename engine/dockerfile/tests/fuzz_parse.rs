//! A deterministic random-input driver for the parser, the conversion, the
//! build checks and the `--call` outline: generated Dockerfiles built from
//! risky fragments, and mutations of the parser test cases. It runs on
//! stable as a normal test. `fuzz/` contains the coverage-guided libFuzzer
//! target for longer runs.

use async_trait::async_trait;
use std::sync::mpsc;
use std::time::Duration;
use strata_dockerfile::checks::{diagnostic, outline};
use strata_dockerfile::convert::{self, ConvertOptions, ImageResolver, ResolvedImage};
use strata_llb::Platform;
use strata_llb::image::ImageConfig;

/// Generated inputs per run; each takes well under a millisecond.
const GENERATED: usize = 4000;
/// How long one input may take before the driver reports a hang. Generous
/// so a loaded machine does not fail the test.
const HANG_LIMIT: Duration = Duration::from_secs(20);

const FRAGMENTS: &[&str] = &[
    "FROM ",
    "from ",
    "FrOm ",
    "RUN ",
    "COPY ",
    "ADD ",
    "ARG ",
    "ENV ",
    "LABEL ",
    "WORKDIR ",
    "CMD ",
    "ENTRYPOINT ",
    "EXPOSE ",
    "HEALTHCHECK ",
    "ONBUILD ",
    "SHELL ",
    "USER ",
    "VOLUME ",
    "STOPSIGNAL ",
    "MAINTAINER ",
    "RUNN ",
    "busybox",
    "scratch",
    " AS ",
    " as ",
    "build",
    "Build",
    "0",
    "1",
    "--from=",
    "--platform=",
    "--mount=type=secret,id=",
    "--mount=type=ssh",
    "--chown=",
    "--interval=",
    "--form=",
    "$",
    "${",
    "}",
    "${A:-",
    "${A:+",
    "${A#",
    "${A%%",
    "${A/",
    "$$",
    "\\",
    "\\\n",
    "\n",
    "\n\n",
    "\r\n",
    "\t",
    " ",
    "#",
    "# check=",
    "# escape=`",
    "# syntax=",
    "skip=all",
    "error=true",
    "<<EOF",
    "<<-EOF",
    "<<'EOF'",
    "EOF",
    "[",
    "]",
    "\"",
    "'",
    ",",
    "[\"sh\", \"-c\"]",
    "=",
    "A",
    "A=1",
    "/",
    "./",
    "..",
    "*",
    "?",
    "80/TcP",
    "127.0.0.1:80:80",
    "é",
    "\u{feff}",
    "\u{0}",
    "linux/amd64",
    "$BUILDPLATFORM",
    "missing",
    "x.secret",
    "TOKEN",
    "CMD",
    "NONE",
];

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

/// xorshift64*: a fixed seed keeps every run's inputs the same, so a
/// failure reproduces.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

fn generated(random: &mut Random) -> String {
    let mut text = String::new();
    for _ in 0..random.below(60) {
        text.push_str(FRAGMENTS[random.below(FRAGMENTS.len())]);
    }
    text
}

/// Deletes, duplicates or inserts a fragment at random places of `seed`.
fn mutated(seed: &str, random: &mut Random) -> String {
    let mut text = seed.to_string();
    for _ in 0..1 + random.below(4) {
        let mut at = random.below(text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        match random.below(3) {
            0 => {
                let mut end = (at + random.below(8)).min(text.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.replace_range(at..end, "");
            }
            1 => {
                let copy = text[at..]
                    .chars()
                    .take(random.below(16))
                    .collect::<String>();
                text.insert_str(at, &copy);
            }
            _ => text.insert_str(at, FRAGMENTS[random.below(FRAGMENTS.len())]),
        }
    }
    text
}

fn seeds() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/cases");
    let mut seeds = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == "Dockerfile") {
                seeds.extend(std::fs::read_to_string(&path).ok());
            }
        }
    }
    seeds.sort();
    seeds
}

/// Runs everything a build, `--check` and `--call` do with the text.
fn exercise(text: &str) {
    let Ok(ast) = strata_dockerfile::parser::parse(text) else {
        return;
    };
    let _ = outline::targets(&ast, text);
    let _ = outline::outline(&ast, text, None);
    let options = ConvertOptions {
        platform: Platform::parse("linux/amd64").unwrap(),
        excludes: vec!["*.secret".into()],
        ..ConvertOptions::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    if let Err(error) = runtime.block_on(convert::convert(&ast, &options, &AnyImage)) {
        let _ = format!("{:?}", miette::Report::new(error.to_diagnostic(text)));
    }
    if let Ok(report) = runtime.block_on(convert::check(&ast, &options, &AnyImage)) {
        let _ = diagnostic::render_check_report(&report, "Dockerfile", text);
    }
}

#[test]
fn random_dockerfiles_neither_panic_nor_hang() {
    let mut random = Random(0x5eed_1234_abcd_0001);
    let seeds = seeds();
    let mut inputs: Vec<String> = (0..GENERATED).map(|_| generated(&mut random)).collect();
    for seed in &seeds {
        for _ in 0..8 {
            inputs.push(mutated(seed, &mut random));
        }
    }

    let (done, finished) = mpsc::channel();
    let worker_inputs = inputs.clone();
    let worker = std::thread::spawn(move || {
        for (index, input) in worker_inputs.iter().enumerate() {
            exercise(input);
            if done.send(index).is_err() {
                return;
            }
        }
    });
    for (index, input) in inputs.iter().enumerate() {
        match finished.recv_timeout(HANG_LIMIT) {
            Ok(_) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("input {index} did not finish within {HANG_LIMIT:?}: {input:?}")
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let panic = worker.join().unwrap_err();
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!("input {index} panicked ({message}): {input:?}");
            }
        }
    }
}
