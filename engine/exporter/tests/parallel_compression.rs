//! Layers compressed on several threads: the bytes must not depend on the
//! thread count, and standard tools must read them back to the exact tar.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use strata_exporter::Compression;
use strata_exporter::gzip::BLOCK_SIZE;
use strata_exporter::layer::{LayerOptions, write_layer_with};

/// Writes files of text mixed with pseudo-random bytes, several gzip
/// blocks in all, so blocks compress unevenly.
fn sample_tree(root: &Path) {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    // Eight files of 1.3 MB pass zstd's 8 MiB job size at level 3, so
    // its frames hold more than one job.
    for file in 0..8 {
        let mut data = Vec::new();
        while data.len() < BLOCK_SIZE + 300_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if state % 4 == 0 {
                data.extend_from_slice(&state.to_le_bytes());
            } else {
                data.extend_from_slice(format!("line {state} of file {file}\n").as_bytes());
            }
        }
        let dir = root.join(format!("dir{}", file % 2));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("file{file}")), data).unwrap();
    }
}

fn layer(dir: &Path, compression: Compression, threads: usize) -> (Vec<u8>, String) {
    let options = LayerOptions {
        compression,
        compression_threads: Some(threads),
        ..LayerOptions::default()
    };
    let mut out = Vec::new();
    let digests = write_layer_with(dir, &mut out, &options).unwrap();
    assert_eq!(digests.size, out.len() as u64, "compressed size");
    (out, digests.diff_id.to_string())
}

/// Pipes `input` through a command and returns its standard output.
fn pipe(program: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(output.status.success(), "{program} {args:?} failed");
    output.stdout
}

#[test]
fn gzip_same_bytes_any_threads() {
    let dir = tempfile::tempdir().unwrap();
    sample_tree(dir.path());
    let (one, diff_id) = layer(dir.path(), Compression::Gzip, 1);
    for threads in [2, 4] {
        let (many, many_diff_id) = layer(dir.path(), Compression::Gzip, threads);
        assert!(one == many, "gzip with {threads} threads changed the bytes");
        assert_eq!(many_diff_id, diff_id, "diff id with {threads} threads");
    }
}

#[test]
fn gzip_decodes_to_exact_tar() {
    let dir = tempfile::tempdir().unwrap();
    sample_tree(dir.path());
    let (tar, tar_diff_id) = layer(dir.path(), Compression::Uncompressed, 1);
    let (gzip, diff_id) = layer(dir.path(), Compression::Gzip, 3);
    assert_eq!(diff_id, tar_diff_id);
    assert!(
        gzip.len() > 2 * BLOCK_SIZE,
        "the layer spans several blocks"
    );

    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(gzip.as_slice())
        .read_to_end(&mut decoded)
        .unwrap();
    assert!(decoded == tar, "flate2 decodes to the tar");

    pipe("gzip", &["-t"], &gzip);
    let zcat = pipe("zcat", &[], &gzip);
    assert!(zcat == tar, "zcat decodes to the tar");
}

#[test]
fn zstd_same_bytes_any_threads() {
    let dir = tempfile::tempdir().unwrap();
    sample_tree(dir.path());
    let (tar, _) = layer(dir.path(), Compression::Uncompressed, 1);
    let (one, _) = layer(dir.path(), Compression::Zstd, 1);
    for threads in [2, 4] {
        let (many, _) = layer(dir.path(), Compression::Zstd, threads);
        assert!(one == many, "zstd with {threads} threads changed the bytes");
    }
    let decoded = zstd::decode_all(one.as_slice()).unwrap();
    assert!(decoded == tar, "zstd decodes to the tar");
}

#[test]
fn invalid_thread_variable_rejected() {
    // SAFETY: this test binary reads the variable only in this test.
    unsafe { std::env::set_var("STRATA_COMPRESSION_THREADS", "many") };
    let result = strata_exporter::layer::compression_threads(None);
    unsafe { std::env::remove_var("STRATA_COMPRESSION_THREADS") };
    let error = result.unwrap_err().to_string();
    assert!(error.contains("`many`"), "{error}");
}
