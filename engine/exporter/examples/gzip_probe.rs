//! Times gzip level 6 over one file, for `bench/registry.sh`: flate2's
//! zlib-ng encoder on one thread (the single-core baseline), then
//! Strata's block encoder on one thread and on every CPU. Prints one line
//! per run: the encoder, its threads, the seconds and the compressed bytes.
//!
//! Usage: gzip_probe FILE

use flate2::Compression;
use std::fs::File;
use std::io::{self, BufReader, Write};
use std::time::Instant;
use strata_exporter::gzip::ParallelGzEncoder;

/// A writer that only counts bytes.
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn open(path: &str) -> BufReader<File> {
    let file = File::open(path).unwrap_or_else(|e| panic!("Failed to open `{path}`: {e}"));
    BufReader::with_capacity(1024 * 1024, file)
}

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("Usage: gzip_probe FILE");
        std::process::exit(2);
    };
    let level = Compression::new(6);

    let start = Instant::now();
    let mut encoder = flate2::write::GzEncoder::new(Counter(0), level);
    io::copy(&mut open(&path), &mut encoder).unwrap();
    let bytes = encoder.finish().unwrap().0;
    println!("flate2 1 {:.2} {bytes}", start.elapsed().as_secs_f64());

    for threads in [1, num_cpus::get()] {
        let start = Instant::now();
        let mut encoder = ParallelGzEncoder::new(Counter(0), level, threads);
        io::copy(&mut open(&path), &mut encoder).unwrap();
        let bytes = encoder.finish().unwrap().0;
        println!(
            "blocks {threads} {:.2} {bytes}",
            start.elapsed().as_secs_f64()
        );
    }
}
