//! A gzip writer that compresses one stream on several threads, as pigz
//! does, with output that does not depend on the thread count.
//!
//! The input is cut into blocks of [`BLOCK_SIZE`] bytes. Each block is
//! compressed on its own as raw deflate, primed with the last 32 KiB of
//! the block before it as the preset dictionary, and ended with a sync
//! flush (an empty stored block) so the next block starts on a byte
//! boundary. The last block, full or not, ends the deflate stream instead.
//! One gzip header goes first, and the trailer carries the CRC-32 of all
//! blocks combined. So the bytes depend only on the input, the level and
//! the block size: one thread and eight threads write the same stream.
//!
//! A stream that ends within its first block is compressed on the calling
//! thread and starts no threads.

use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Bytes of input per independently compressed block.
pub const BLOCK_SIZE: usize = 1024 * 1024;
/// The deflate window: how much of the previous block primes the next.
const DICTIONARY_SIZE: usize = 32 * 1024;
/// Blocks in flight per thread, so the producer can fill the next block
/// while every thread compresses one.
const BLOCKS_PER_THREAD: usize = 2;

/// One block to compress.
struct Job {
    index: u64,
    data: Vec<u8>,
    dictionary: Vec<u8>,
    last: bool,
}

/// A compressed block and the CRC-32 of its input.
struct Done {
    index: u64,
    result: io::Result<(Vec<u8>, Crc)>,
}

/// The worker threads of one stream, started at its second block.
struct Pool {
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    fn start(count: usize, level: Compression) -> Pool {
        let (job_sender, job_receiver) = channel::<Job>();
        let (done_sender, done) = channel::<Done>();
        let job_receiver = Arc::new(Mutex::new(job_receiver));
        let threads = (0..count)
            .map(|_| {
                let jobs = job_receiver.clone();
                let done = done_sender.clone();
                std::thread::spawn(move || {
                    loop {
                        let job = match jobs.lock() {
                            Ok(receiver) => receiver.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        let result = compress_job(&job, level);
                        if done
                            .send(Done {
                                index: job.index,
                                result,
                            })
                            .is_err()
                        {
                            return;
                        }
                    }
                })
            })
            .collect();
        Pool {
            jobs: Some(job_sender),
            done,
            threads,
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing the job channel ends every worker after its current block.
        self.jobs.take();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A gzip encoder that compresses blocks on up to `threads` threads.
pub struct ParallelGzEncoder<W: Write> {
    out: Option<W>,
    level: Compression,
    threads: usize,
    /// Input of the block being filled.
    block: Vec<u8>,
    /// The last [`DICTIONARY_SIZE`] bytes of the previous block.
    dictionary: Vec<u8>,
    next_index: u64,
    /// Index of the next block to write out.
    next_write: u64,
    /// Compressed blocks that arrived before an earlier one.
    ready: BTreeMap<u64, (Vec<u8>, Crc)>,
    crc: Crc,
    pool: Option<Pool>,
    header_written: bool,
}

impl<W: Write> ParallelGzEncoder<W> {
    /// Creates an encoder writing to `out`. `threads` of 1 compresses on
    /// the calling thread; the output is the same for every value.
    pub fn new(out: W, level: Compression, threads: usize) -> ParallelGzEncoder<W> {
        ParallelGzEncoder {
            out: Some(out),
            level,
            threads: threads.max(1),
            block: Vec::with_capacity(BLOCK_SIZE),
            dictionary: Vec::new(),
            next_index: 0,
            next_write: 0,
            ready: BTreeMap::new(),
            crc: Crc::new(),
            pool: None,
            header_written: false,
        }
    }

    /// Compresses the last block, writes the trailer and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        let data = std::mem::take(&mut self.block);
        self.submit(data, true)?;
        self.wait_for(self.next_index)?;
        self.pool.take();

        let mut out = self.out.take().expect("the writer is taken only here");
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.sum().to_le_bytes());
        trailer[4..].copy_from_slice(&self.crc.amount().to_le_bytes());
        out.write_all(&trailer)?;
        Ok(out)
    }

    /// Hands a block to the pool, or compresses it here when no other
    /// thread is wanted or the stream fits in one block.
    fn submit(&mut self, data: Vec<u8>, last: bool) -> io::Result<()> {
        let dictionary = std::mem::take(&mut self.dictionary);
        let tail = data.len().saturating_sub(DICTIONARY_SIZE);
        self.dictionary = data[tail..].to_vec();
        let job = Job {
            index: self.next_index,
            data,
            dictionary,
            last,
        };
        self.next_index += 1;

        let inline = self.threads == 1 || (self.pool.is_none() && last);
        if inline {
            let result = compress_job(&job, self.level)?;
            self.ready.insert(job.index, result);
            return self.write_ready();
        }

        let (threads, level) = (self.threads, self.level);
        let pool = self.pool.get_or_insert_with(|| Pool::start(threads, level));
        let sender = pool.jobs.as_ref().expect("jobs close only on drop");
        if sender.send(job).is_err() {
            return Err(io::Error::other("gzip worker threads stopped"));
        }
        let in_flight = self.next_index - self.next_write;
        let limit = (self.threads * BLOCKS_PER_THREAD) as u64;
        if in_flight >= limit {
            self.wait_for(self.next_index - limit + 1)?;
        }
        Ok(())
    }

    /// Writes compressed blocks until every block before `index` is out.
    fn wait_for(&mut self, index: u64) -> io::Result<()> {
        while self.next_write < index {
            if !self.ready.contains_key(&self.next_write) {
                let pool = self.pool.as_ref().expect("pending blocks need a pool");
                let done = pool
                    .done
                    .recv()
                    .map_err(|_| io::Error::other("gzip worker threads stopped"))?;
                self.ready.insert(done.index, done.result?);
            }
            self.write_ready()?;
        }
        Ok(())
    }

    /// Writes the blocks that are next in order.
    fn write_ready(&mut self) -> io::Result<()> {
        let out = self
            .out
            .as_mut()
            .expect("the writer is present until finish");
        if !self.header_written {
            out.write_all(&gzip_header(self.level))?;
            self.header_written = true;
        }
        while let Some((bytes, crc)) = self.ready.remove(&self.next_write) {
            out.write_all(&bytes)?;
            self.crc.combine(&crc);
            self.next_write += 1;
        }
        Ok(())
    }
}

impl<W: Write> Write for ParallelGzEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = BLOCK_SIZE - self.block.len();
        let taken = room.min(buf.len());
        self.block.extend_from_slice(&buf[..taken]);
        if self.block.len() == BLOCK_SIZE {
            let data = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK_SIZE));
            self.submit(data, false)?;
        }
        Ok(taken)
    }

    /// Writes out the blocks compressed so far. A partial block stays
    /// buffered, because flushing it would make the output depend on when
    /// the caller flushes.
    fn flush(&mut self) -> io::Result<()> {
        self.write_ready()?;
        self.out.as_mut().expect("writer present").flush()
    }
}

/// The 10-byte gzip header flate2's `GzBuilder` writes: no name, mtime 0,
/// the extra flags for the level, and OS "unknown" (255).
fn gzip_header(level: Compression) -> [u8; 10] {
    let extra_flags = if level.level() >= Compression::best().level() {
        2
    } else if level.level() <= Compression::fast().level() {
        4
    } else {
        0
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, extra_flags, 255]
}

/// Compresses one block as raw deflate and returns it with its CRC-32.
fn compress_job(job: &Job, level: Compression) -> io::Result<(Vec<u8>, Crc)> {
    let mut crc = Crc::new();
    crc.update(&job.data);
    let bytes = deflate_block(&job.data, &job.dictionary, level, job.last)?;
    Ok((bytes, crc))
}

/// Compresses `data` as raw deflate primed with `dictionary`, ending with
/// a sync flush, or with the end of the stream when `last` is set.
fn deflate_block(
    data: &[u8],
    dictionary: &[u8],
    level: Compression,
    last: bool,
) -> io::Result<Vec<u8>> {
    let mut compress = Compress::new(level, false);
    if !dictionary.is_empty() {
        compress
            .set_dictionary(dictionary)
            .map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    // deflateBound for zlib is about 0.03 % over the input plus a few bytes.
    let mut out = Vec::with_capacity(data.len() + data.len() / 1000 + 64);
    loop {
        let consumed = compress.total_in() as usize;
        let status = compress
            .compress_vec(&data[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = compress.total_in() as usize == data.len();
        // A flush is complete once deflate stops with output space to spare.
        let finished = match last {
            true => status == Status::StreamEnd,
            false => all_in && out.len() < out.capacity(),
        };
        if finished {
            return Ok(out);
        }
        out.reserve(64 * 1024);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Text mixed with pseudo-random bytes, so blocks compress unevenly.
    fn sample(len: usize) -> Vec<u8> {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut data = Vec::with_capacity(len);
        while data.len() < len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if state % 3 == 0 {
                data.extend_from_slice(&state.to_le_bytes());
            } else {
                data.extend_from_slice(b"layer text that repeats often; ");
            }
        }
        data.truncate(len);
        data
    }

    fn encode(data: &[u8], threads: usize, write_size: usize) -> Vec<u8> {
        let mut encoder = ParallelGzEncoder::new(Vec::new(), Compression::default(), threads);
        for chunk in data.chunks(write_size) {
            encoder.write_all(chunk).unwrap();
        }
        encoder.finish().unwrap()
    }

    fn decode(gzip: &[u8]) -> Vec<u8> {
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(gzip)
            .read_to_end(&mut decoded)
            .unwrap();
        decoded
    }

    #[test]
    fn output_same_for_any_thread_count() {
        let data = sample(5 * BLOCK_SIZE + 12_345);
        let one = encode(&data, 1, 64 * 1024);
        for threads in [2, 3, 8] {
            let many = encode(&data, threads, 10_000);
            assert!(one == many, "{threads} threads changed the output");
        }
    }

    #[test]
    fn output_decodes_to_input() {
        for len in [
            0,
            1,
            BLOCK_SIZE - 1,
            BLOCK_SIZE,
            BLOCK_SIZE + 1,
            3 * BLOCK_SIZE,
        ] {
            let data = sample(len);
            let decoded = decode(&encode(&data, 4, 100_000));
            assert_eq!(decoded.len(), len, "length of {len} bytes");
            assert!(decoded == data, "content of {len} bytes");
        }
    }

    #[test]
    fn dictionary_keeps_ratio_close() {
        let data = sample(4 * BLOCK_SIZE);
        let parallel = encode(&data, 2, BLOCK_SIZE).len();
        let mut single = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
        single.write_all(&data).unwrap();
        let single = single.finish().unwrap().len();
        // The sync markers cost 5 bytes per block; priming keeps matches
        // across block edges, so the sizes stay within 1 %.
        assert!(
            parallel * 100 <= single * 101,
            "parallel {parallel} bytes vs single {single} bytes"
        );
    }

    #[test]
    fn header_matches_flate2() {
        let data = sample(BLOCK_SIZE / 2);
        for level in [
            Compression::fast(),
            Compression::default(),
            Compression::best(),
        ] {
            let mut ours = ParallelGzEncoder::new(Vec::new(), level, 4);
            ours.write_all(&data).unwrap();
            let ours = ours.finish().unwrap();
            let mut theirs = flate2::GzBuilder::new().write(Vec::new(), level);
            theirs.write_all(&data).unwrap();
            let theirs = theirs.finish().unwrap();
            assert_eq!(ours[..10], theirs[..10], "header at level {level:?}");
            assert!(decode(&ours) == data, "content at level {level:?}");
        }
    }
}
