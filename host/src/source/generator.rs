//! The `generator` source: lines of the seed's formats (and 8-word lines for word count),
//! pseudo-random but deterministic for a seed. With a rate it makes `rate * interval` lines per
//! batch, stamped with the batch's time; without, `lines_per_batch` lines as fast as the job goes.

use super::{Source, SourceError};
use crate::batch::RecordBatch;
use crate::engine::Tick;
use crate::job::spec::GeneratorFormat;

/// A small fast PRNG (xorshift64*), so generated data costs little next to the job itself.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Its state (to continue the same sequence later).
    pub fn state(&self) -> u64 {
        self.0
    }

    /// A generator at `state` (from `state`).
    pub fn from_state(state: u64) -> Rng {
        Rng(state)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() >> 32) * n) >> 32
    }
}

/// A vocabulary of 1,000 made-up words drawn with a Zipf(1) skew: word `i` has weight `1/(i+1)`.
pub struct Vocabulary {
    words: Vec<String>,
    cdf: Vec<f64>,
}

impl Default for Vocabulary {
    fn default() -> Self {
        Vocabulary::new(1000)
    }
}

impl Vocabulary {
    /// `n` distinct words.
    pub fn new(n: usize) -> Vocabulary {
        // Bijective base 26 from 702: every word has three letters and all are distinct, so
        // lines of 8 words are about 31 bytes.
        let words = (0..n)
            .map(|i| {
                let mut x = i + 702;
                let mut w = Vec::new();
                while x > 0 {
                    x -= 1;
                    w.push(b'a' + (x % 26) as u8);
                    x /= 26;
                }
                w.reverse();
                String::from_utf8(w).expect("ASCII letters")
            })
            .collect();
        let mut cdf = Vec::with_capacity(n);
        let mut acc = 0.0;
        for i in 0..n {
            acc += 1.0 / (i as f64 + 1.0);
            cdf.push(acc);
        }
        for c in &mut cdf {
            *c /= acc;
        }
        Vocabulary { words, cdf }
    }

    /// A word drawn with the Zipf weights.
    pub fn draw(&self, rng: &mut Rng) -> &str {
        let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let i = self.cdf.partition_point(|&c| c < u).min(self.words.len() - 1);
        &self.words[i]
    }
}

/// Appends one line of `format` to `out`. `ts_s` is the line's timestamp in seconds.
pub fn line(format: GeneratorFormat, rng: &mut Rng, vocab: &Vocabulary, ts_s: i64, out: &mut String) {
    use std::fmt::Write;
    let r = rng.next_u64();
    match format {
        GeneratorFormat::Visits => {
            let _ = write!(out, "u{},{ts_s},/page/{}", r % 50, (r >> 8) % 20);
        }
        GeneratorFormat::Logs => {
            let level = ["INFO", "WARN", "ERROR", "DEBUG"][(r % 4) as usize];
            let _ = write!(
                out,
                "{ts_s}|{level}|request {} took {} ms",
                (r >> 40) % 100_000,
                (r >> 20) % 500
            );
        }
        GeneratorFormat::Behavior => {
            let action = ["view", "click", "scroll", "purchase"][(r % 4) as usize];
            let _ = write!(
                out,
                "{},{ts_s},{action},/products/item/{}",
                10_000 + (r >> 8) % 90_000,
                (r >> 32) % 10_000
            );
        }
        GeneratorFormat::Words => {
            for i in 0..8 {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(vocab.draw(rng));
            }
        }
    }
}

/// Lines per batch of an unpaced generator that names none.
pub const LINES_PER_BATCH_DEFAULT: u64 = 10_000;

/// Generated lines.
pub struct GeneratorSource {
    format: GeneratorFormat,
    rate_per_s: Option<u64>,
    lines_per_batch: u64,
    batch_ms: i64,
    rng: Rng,
    vocab: Vocabulary,
    line: String,
    batches: Option<u64>,
}

impl GeneratorSource {
    /// A generator of `format` lines.
    pub fn new(
        format: GeneratorFormat,
        rate_per_s: Option<u64>,
        lines_per_batch: u64,
        seed: u64,
        batch_ms: i64,
    ) -> GeneratorSource {
        GeneratorSource {
            format,
            rate_per_s,
            lines_per_batch,
            batch_ms,
            rng: Rng::new(seed),
            vocab: Vocabulary::default(),
            line: String::new(),
            batches: None,
        }
    }

    /// The same, making `batches` batches when unpaced (then the job ends).
    pub fn with_batches(mut self, batches: Option<u64>) -> GeneratorSource {
        self.batches = batches;
        self
    }
}

impl Source for GeneratorSource {
    fn next_batch(&mut self, tick: Tick) -> Result<RecordBatch, SourceError> {
        let n = match self.rate_per_s {
            Some(rate) => (rate as u128 * self.batch_ms.max(0) as u128 / 1000).min(u64::MAX as u128) as u64,
            None => self.lines_per_batch,
        };
        // Capacity is a hint: a batch larger than this grows as it fills (the server's admission
        // bounds records per batch long before).
        let hint = n.min(1 << 20) as usize;
        let mut out = RecordBatch::with_capacity(hint, hint * 56);
        let ts_s = tick.time_ms.div_euclid(1000);
        for _ in 0..n {
            self.line.clear();
            line(self.format, &mut self.rng, &self.vocab, ts_s, &mut self.line);
            out.push(None, self.line.as_bytes(), tick.time_ms);
        }
        Ok(out)
    }

    fn is_live(&self) -> bool {
        self.rate_per_s.is_some()
    }

    fn batches_hint(&self) -> Option<u64> {
        self.batches.filter(|_| self.rate_per_s.is_none())
    }

    fn position(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "rng": self.rng.state().to_string() }))
    }

    fn seek(&mut self, position: &serde_json::Value) -> Result<(), SourceError> {
        let state = position["rng"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| super::bad_position("generator", position))?;
        self.rng = Rng::from_state(state);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_lines_are_about_30_bytes_and_zipf_skewed() {
        let vocab = Vocabulary::default();
        let mut rng = Rng::new(1);
        let mut total = 0;
        let mut the_most = 0;
        let top = vocab.words[0].clone();
        let mut s = String::new();
        for _ in 0..10_000 {
            s.clear();
            line(GeneratorFormat::Words, &mut rng, &vocab, 0, &mut s);
            total += s.len();
            the_most += s.split(' ').filter(|w| *w == top).count();
            assert_eq!(s.split(' ').count(), 8);
        }
        let avg = total as f64 / 10_000.0;
        assert!((28.0..34.0).contains(&avg), "average line {avg} bytes");
        // Zipf(1) over 1,000 words: the top word is about 1 / H(1000) = 13% of words.
        let share = the_most as f64 / 80_000.0;
        assert!((0.10..0.17).contains(&share), "top word share {share}");
    }
}
