//! The `socket` source: connects to `host:port` and reads text lines, like Spark's
//! `socketTextStream`. A background thread gathers lines between cuts; when the connection
//! fails or closes it reconnects, backing off from 100 ms to 2 s. It holds at most
//! `SourceLimits` between batches: when the buffer is full it stops reading (TCP pushes back on
//! the sender), a line longer than the line limit is dropped (and counted), and a connect gives
//! up after its timeout. Dropping the source tells the thread to stop and never waits for it.

use std::io::{ErrorKind, Read};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Source, SourceError, SourceLimits};
use crate::batch::RecordBatch;
use crate::engine::{Clock, SystemClock, Tick};

#[derive(Default)]
struct Buffer {
    lines: Vec<(Vec<u8>, i64)>,
    bytes: usize,
}

/// Lines from a TCP server.
pub struct SocketSource {
    buffer: Arc<Mutex<Buffer>>,
    stop: Arc<AtomicBool>,
    dropped_lines: Arc<AtomicU64>,
}

impl SocketSource {
    /// Starts reading from `host:port` in the background.
    pub fn start(host: String, port: u16, limits: SourceLimits) -> SocketSource {
        let buffer: Arc<Mutex<Buffer>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let dropped_lines = Arc::new(AtomicU64::new(0));
        let reader = Reader {
            host,
            port,
            limits,
            buffer: buffer.clone(),
            stop: stop.clone(),
            dropped_lines: dropped_lines.clone(),
        };
        std::thread::Builder::new()
            .name(format!("sluice-socket-{}:{}", reader.host, reader.port))
            .spawn(move || reader.run())
            .expect("the OS can start a thread");
        SocketSource {
            buffer,
            stop,
            dropped_lines,
        }
    }

    /// Lines dropped for being longer than the line limit.
    pub fn dropped_lines(&self) -> u64 {
        self.dropped_lines.load(Ordering::Relaxed)
    }
}

struct Reader {
    host: String,
    port: u16,
    limits: SourceLimits,
    buffer: Arc<Mutex<Buffer>>,
    stop: Arc<AtomicBool>,
    dropped_lines: Arc<AtomicU64>,
}

impl Reader {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn connect(&self) -> std::io::Result<TcpStream> {
        let timeout = Duration::from_millis(self.limits.connect_timeout_ms.max(1));
        let mut last = None;
        for addr in (self.host.as_str(), self.port).to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::new(ErrorKind::NotFound, "no address")))
    }

    fn run(self) {
        let (host, port) = (self.host.clone(), self.port);
        let mut backoff = Duration::from_millis(100);
        // Failed connects in a row: the first is a warning, then the 2nd, 4th, 8th... (the
        // log backs off too), the rest are debug lines.
        let mut failures: u64 = 0;
        while !self.stopped() {
            match self.connect() {
                Ok(stream) => {
                    backoff = Duration::from_millis(100);
                    failures = 0;
                    tracing::info!("socket source connected to {host}:{port}");
                    match self.read(stream) {
                        Ok(()) => tracing::info!("socket source {host}:{port} closed; reconnecting"),
                        Err(e) => tracing::warn!("socket source {host}:{port}: {e}; reconnecting"),
                    }
                }
                Err(e) => {
                    failures += 1;
                    if failures.is_power_of_two() {
                        tracing::warn!(
                            "socket source cannot connect to {host}:{port}: {e} ({failures} tries so far); retrying every {:?} at most",
                            Duration::from_secs(2)
                        );
                    } else {
                        tracing::debug!("socket source cannot connect to {host}:{port}: {e}; retrying in {backoff:?}");
                    }
                }
            }
            let until = std::time::Instant::now() + backoff;
            while std::time::Instant::now() < until && !self.stopped() {
                std::thread::sleep(Duration::from_millis(20));
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// Reads lines until the connection closes or the source stops. Complete lines are taken
    /// while the buffer has room; then nothing more is read until the next cut.
    fn read(&self, mut stream: TcpStream) -> std::io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_millis(100)))?;
        let mut chunk = vec![0u8; 64 << 10];
        // Bytes read but not yet taken: complete lines, then at most a part of one.
        let mut pending: Vec<u8> = Vec::new();
        // Inside a line over the limit: its bytes are skipped up to its end.
        let mut skipping = false;
        loop {
            if self.stopped() {
                return Ok(());
            }
            let mut start = 0;
            while !self.full() {
                let Some(i) = pending[start..].iter().position(|&b| b == b'\n') else {
                    break;
                };
                let line = &pending[start..start + i];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.len() > self.limits.line_bytes_max {
                    self.drop_line();
                } else {
                    self.push(line.to_vec());
                }
                start += i + 1;
            }
            pending.drain(..start);
            if self.full() {
                // The sender's TCP window fills and it waits until the next cut.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            if pending.len() > self.limits.line_bytes_max {
                pending.clear();
                skipping = true;
                self.drop_line();
            }
            let n = match stream.read(&mut chunk) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut data = &chunk[..n];
            if skipping {
                match data.iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        data = &data[i + 1..];
                        skipping = false;
                    }
                    None => continue,
                }
            }
            pending.extend_from_slice(data);
        }
    }

    fn drop_line(&self) {
        self.dropped_lines.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            "socket source {}:{}: a line longer than {} bytes was dropped (socket_line_bytes_max)",
            self.host,
            self.port,
            self.limits.line_bytes_max
        );
    }

    fn full(&self) -> bool {
        let b = self.buffer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        b.lines.len() >= self.limits.buffer_records_max || b.bytes >= self.limits.buffer_bytes_max
    }

    fn push(&self, line: Vec<u8>) {
        let now = SystemClock.now_ms();
        let mut b = self.buffer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        b.bytes += line.len() + 32;
        b.lines.push((line, now));
    }
}

impl Source for SocketSource {
    fn next_batch(&mut self, _tick: Tick) -> Result<RecordBatch, SourceError> {
        let taken = std::mem::take(&mut *self.buffer.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let mut out =
            RecordBatch::with_capacity(taken.lines.len(), taken.lines.iter().map(|(l, _)| l.len() + 16).sum());
        for (line, ts) in &taken.lines {
            out.push(None, line, *ts);
        }
        Ok(out)
    }

    fn is_live(&self) -> bool {
        true
    }
}

impl Drop for SocketSource {
    fn drop(&mut self) {
        // The thread sees the flag within one read timeout or connect timeout and ends; nobody
        // waits for it (a stop never blocks on a connect).
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn long_lines_are_dropped_and_a_full_buffer_stops_reading() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let limits = SourceLimits {
            buffer_records_max: 3,
            buffer_bytes_max: 1 << 20,
            line_bytes_max: 10,
            connect_timeout_ms: 1000,
            ..SourceLimits::default()
        };
        let mut source = SocketSource::start("127.0.0.1".into(), port, limits);
        let (mut peer, _) = listener.accept().unwrap();
        peer.write_all(b"short\n").unwrap();
        peer.write_all(&[b'x'; 100_000]).unwrap();
        peer.write_all(b"\nok\r\na\nb\nc\nd\n").unwrap();
        let tick = Tick {
            batch_id: 1,
            time_ms: 0,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut got = Vec::new();
        while got.len() < 6 && std::time::Instant::now() < deadline {
            let batch = source.next_batch(tick).unwrap();
            assert!(batch.len() <= 3, "the buffer holds at most 3 records");
            got.extend(batch.iter().map(|r| String::from_utf8_lossy(r.value).into_owned()));
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(got, ["short", "ok", "a", "b", "c", "d"]);
        assert_eq!(source.dropped_lines(), 1);
    }

    #[test]
    fn dropping_a_source_that_cannot_connect_does_not_wait() {
        // 10.255.255.1 is not routed here: a connect would hang until its timeout.
        let limits = SourceLimits {
            connect_timeout_ms: 5_000,
            ..SourceLimits::default()
        };
        let source = SocketSource::start("10.255.255.1".into(), 9, limits);
        std::thread::sleep(Duration::from_millis(50));
        let t = std::time::Instant::now();
        drop(source);
        assert!(t.elapsed() < Duration::from_millis(100));
    }
}
