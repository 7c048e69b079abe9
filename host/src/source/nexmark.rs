//! The `nexmark` source: the events of the Nexmark benchmark (persons, auctions and bids of an
//! online auction site), deterministic by seed, as text lines the queries' UDFs parse
//! (`udfs/nexmark`, `docs/nexmark.md`).
//!
//! It follows the generator of Beam's and Flink's Nexmark suites: of every 50 events 1 is a new
//! person, 3 are new auctions and 46 are bids; half the bids go to the current "hot" auction and
//! three quarters come from a "hot" bidder (one in every 100 of each), the others to one of the
//! last 100 auctions and 1,000 people; prices are log-uniform from $1 to $1,000,000; each kind of
//! event is padded to Nexmark's average size (persons 200 bytes, auctions 500, bids 100). Event
//! `i` depends only on the seed and `i`, so the source's position is one number.
//!
//! Event time: batch `k` (time `T`) holds the next `events_per_s * interval` events, stamped
//! evenly over `[T - interval, T)`. A window of the engine at `T` of length `L` therefore holds
//! exactly the events of the event-time window `[T - L, T)`, Flink's `HOP`/`TUMBLE` windows.

use super::generator::Rng;
use super::{Source, SourceError};
use crate::batch::RecordBatch;
use crate::engine::Tick;

/// Events a second of event time when the spec names none.
pub const EVENTS_PER_S_DEFAULT: u64 = 10_000;

const PERSON_PROPORTION: u64 = 1;
const AUCTION_PROPORTION: u64 = 3;
const TOTAL_PROPORTION: u64 = 50;
const FIRST_PERSON_ID: u64 = 1000;
const FIRST_AUCTION_ID: u64 = 1000;
const FIRST_CATEGORY_ID: u64 = 10;
const NUM_CATEGORIES: u64 = 5;
const PERSON_ID_LEAD: u64 = 10;
const AUCTION_ID_LEAD: u64 = 10;
const ACTIVE_PEOPLE: u64 = 1000;
const IN_FLIGHT_AUCTIONS: u64 = 100;
const HOT_RATIO: u64 = 100;
const HOT_AUCTION_ODDS: u64 = 2;
const HOT_BIDDER_ODDS: u64 = 4;
const HOT_SELLER_ODDS: u64 = 4;
const PERSON_BYTES: usize = 200;
const AUCTION_BYTES: usize = 500;
const BID_BYTES: usize = 100;

const FIRST_NAMES: &[&str] = &[
    "peter", "paul", "luke", "john", "saul", "vicky", "kate", "julie", "sarah", "deiter", "walter",
];
const LAST_NAMES: &[&str] = &[
    "shultz", "abrams", "spencer", "white", "bartels", "walton", "smith", "jones", "noris",
];
const STATES: &[&str] = &["AZ", "CA", "ID", "OR", "WA", "WY"];
const CITIES: &[&str] = &[
    "phoenix",
    "los angeles",
    "san francisco",
    "boise",
    "portland",
    "bend",
    "redmond",
    "seattle",
    "kent",
    "cheyenne",
];
const CHANNELS: &[&str] = &["Google", "Facebook", "Baidu", "Apple"];

/// The kind of event `i` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A new person.
    Person,
    /// A new auction.
    Auction,
    /// A bid.
    Bid,
}

/// Event `i`'s kind.
pub fn kind(i: u64) -> Kind {
    match i % TOTAL_PROPORTION {
        o if o < PERSON_PROPORTION => Kind::Person,
        o if o < PERSON_PROPORTION + AUCTION_PROPORTION => Kind::Auction,
        _ => Kind::Bid,
    }
}

/// The (0-based) id of the last person created up to event `i`.
fn last_person(i: u64) -> u64 {
    i / TOTAL_PROPORTION
}

/// The (0-based) id of the last auction created up to event `i`.
fn last_auction(i: u64) -> u64 {
    let (epoch, offset) = (i / TOTAL_PROPORTION, i % TOTAL_PROPORTION);
    if offset < PERSON_PROPORTION {
        (epoch * AUCTION_PROPORTION).saturating_sub(1)
    } else if offset >= PERSON_PROPORTION + AUCTION_PROPORTION {
        epoch * AUCTION_PROPORTION + AUCTION_PROPORTION - 1
    } else {
        epoch * AUCTION_PROPORTION + offset - PERSON_PROPORTION
    }
}

/// One of the active people (the last 1,000, and a few not created yet).
fn some_person(i: u64, rng: &mut Rng) -> u64 {
    let people = last_person(i) + 1;
    let active = people.min(ACTIVE_PEOPLE);
    people - active + rng.below(active + PERSON_ID_LEAD)
}

/// One of the auctions in flight (the last 100, and a few not created yet).
fn some_auction(i: u64, rng: &mut Rng) -> u64 {
    let last = last_auction(i);
    let first = last.saturating_sub(IN_FLIGHT_AUCTIONS);
    first + rng.below(last - first + 1 + AUCTION_ID_LEAD)
}

/// Log-uniform from 100 to 100,000,000 cents.
fn price(rng: &mut Rng) -> u64 {
    let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    ((u * 6.0 * std::f64::consts::LN_10).exp() * 100.0).round() as u64
}

/// A mixer for per-event seeds (splitmix64's finaliser).
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Appends a number in decimal.
fn num(out: &mut String, n: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Appends `n % 10,000` as 4 digits (leading zeros).
fn four_digits(out: &mut String, n: u64) {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(n % 10_000);
    out.extend(std::iter::repeat_n('0', 4 - digits.len()));
    out.push_str(digits);
}

/// Makes Nexmark's events.
pub struct Events {
    seed: u64,
    letters: String,
}

impl Events {
    /// The events of `seed`.
    pub fn new(seed: u64) -> Events {
        let mut rng = Rng::new(mix(seed ^ 0x6E65_786D_6172_6B21));
        let letters = (0..4096).map(|_| (b'a' + rng.below(26) as u8) as char).collect();
        Events { seed, letters }
    }

    /// `n` pseudo-random lowercase letters.
    fn letters<'a>(&'a self, rng: &mut Rng, n: usize) -> &'a str {
        let n = n.min(self.letters.len());
        let at = rng.below((self.letters.len() - n + 1) as u64) as usize;
        &self.letters[at..at + n]
    }

    /// Padding that brings a line of `len` bytes to about `average` (within 20%).
    fn extra<'a>(&'a self, rng: &mut Rng, len: usize, average: usize) -> &'a str {
        let want = average.saturating_sub(len);
        let delta = want / 5;
        let size = want - delta
            + if delta == 0 {
                0
            } else {
                rng.below(2 * delta as u64) as usize
            };
        self.letters(rng, size)
    }

    /// Appends event `i`, stamped `date_time` (ms), as a line (no newline) to `out`.
    pub fn write(&self, i: u64, date_time: i64, out: &mut String) {
        let mut rng = Rng::new(mix(self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ mix(i)));
        let start = out.len();
        match kind(i) {
            Kind::Person => {
                let id = last_person(i) + FIRST_PERSON_ID;
                let first = FIRST_NAMES[rng.below(FIRST_NAMES.len() as u64) as usize];
                let last = LAST_NAMES[rng.below(LAST_NAMES.len() as u64) as usize];
                let city = CITIES[rng.below(CITIES.len() as u64) as usize];
                let state = STATES[rng.below(STATES.len() as u64) as usize];
                out.push_str("P,");
                num(out, id);
                for s in [",", first, " ", last, ","] {
                    out.push_str(s);
                }
                out.push_str(self.letters(&mut rng, 7));
                out.push('@');
                out.push_str(self.letters(&mut rng, 5));
                out.push_str(".com,");
                let card = rng.next_u64();
                for (k, shift) in [0, 16, 32, 48].into_iter().enumerate() {
                    if k > 0 {
                        out.push(' ');
                    }
                    four_digits(out, card >> shift);
                }
                for s in [",", city, ",", state, ","] {
                    out.push_str(s);
                }
                num(out, date_time);
                out.push(',');
                let len = out.len() - start;
                out.push_str(self.extra(&mut rng, len, PERSON_BYTES));
            }
            Kind::Auction => {
                let id = last_auction(i) + FIRST_AUCTION_ID;
                let seller = if rng.below(HOT_SELLER_ODDS) > 0 {
                    last_person(i) / HOT_RATIO * HOT_RATIO
                } else {
                    some_person(i, &mut rng)
                } + FIRST_PERSON_ID;
                let category = FIRST_CATEGORY_ID + rng.below(NUM_CATEGORIES);
                let initial = price(&mut rng);
                let reserve = initial + price(&mut rng);
                let expires = date_time + 1000 * (2 + rng.below(19)) as i64;
                out.push_str("A,");
                num(out, id);
                out.push(',');
                out.push_str(self.letters(&mut rng, 20));
                out.push(',');
                out.push_str(self.letters(&mut rng, 100));
                for n in [
                    initial as i64,
                    reserve as i64,
                    date_time,
                    expires,
                    seller as i64,
                    category as i64,
                ] {
                    out.push(',');
                    num(out, n);
                }
                out.push(',');
                let len = out.len() - start;
                out.push_str(self.extra(&mut rng, len, AUCTION_BYTES));
            }
            Kind::Bid => {
                let auction = if rng.below(HOT_AUCTION_ODDS) > 0 {
                    last_auction(i) / HOT_RATIO * HOT_RATIO
                } else {
                    some_auction(i, &mut rng)
                } + FIRST_AUCTION_ID;
                let bidder = if rng.below(HOT_BIDDER_ODDS) > 0 {
                    last_person(i) / HOT_RATIO * HOT_RATIO + 1
                } else {
                    some_person(i, &mut rng)
                } + FIRST_PERSON_ID;
                let price = price(&mut rng);
                let channel = CHANNELS[rng.below(CHANNELS.len() as u64) as usize];
                out.push_str("B,");
                for n in [auction, bidder, price] {
                    num(out, n);
                    out.push(',');
                }
                out.push_str(channel);
                out.push_str(",https://www.nexmark.com/");
                out.push_str(self.letters(&mut rng, 5));
                out.push('/');
                out.push_str(self.letters(&mut rng, 5));
                out.push_str("/item.htm?query=1,");
                num(out, date_time);
                out.push(',');
                let len = out.len() - start;
                out.push_str(self.extra(&mut rng, len, BID_BYTES));
            }
        }
    }
}

/// The `nexmark` source.
pub struct NexmarkSource {
    events: Events,
    per_batch: u64,
    batch_ms: i64,
    next: u64,
    end: Option<u64>,
    paced: bool,
    line: String,
}

impl NexmarkSource {
    /// `events_per_s` events a second of event time (batches of `events_per_s * batch_ms /
    /// 1000`), `end` events in all (absent: endless), on the clock if `paced`.
    pub fn new(seed: u64, events_per_s: u64, end: Option<u64>, paced: bool, batch_ms: i64) -> NexmarkSource {
        NexmarkSource {
            events: Events::new(seed),
            per_batch: per_batch(events_per_s, batch_ms),
            batch_ms,
            next: 0,
            end,
            paced,
            line: String::new(),
        }
    }
}

/// Events in a batch of `batch_ms`.
pub fn per_batch(events_per_s: u64, batch_ms: i64) -> u64 {
    (events_per_s as u128 * batch_ms.max(0) as u128 / 1000).min(u64::MAX as u128) as u64
}

impl Source for NexmarkSource {
    fn next_batch(&mut self, tick: Tick) -> Result<RecordBatch, SourceError> {
        let last = self.end.map_or(u64::MAX, |e| e.max(self.next));
        let n = self.per_batch.min(last - self.next);
        let hint = n.min(1 << 20) as usize;
        // Events average 126 bytes (Nexmark's sizes: 1 x 200 + 3 x 500 + 46 x 100 in 50).
        let mut out = RecordBatch::with_capacity(hint, hint * 150);
        let from = tick.time_ms - self.batch_ms;
        for j in 0..n {
            let date_time = from + (j as i128 * self.batch_ms as i128 / self.per_batch as i128) as i64;
            self.line.clear();
            self.events.write(self.next + j, date_time, &mut self.line);
            out.push(None, self.line.as_bytes(), date_time);
        }
        self.next += n;
        Ok(out)
    }

    fn is_live(&self) -> bool {
        self.paced
    }

    fn batches_hint(&self) -> Option<u64> {
        match self.end {
            Some(end) if !self.paced => Some(if self.per_batch == 0 {
                0
            } else {
                end.div_ceil(self.per_batch)
            }),
            _ => None,
        }
    }

    fn position(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "next_event": self.next }))
    }

    fn seek(&mut self, position: &serde_json::Value) -> Result<(), SourceError> {
        self.next = position["next_event"]
            .as_u64()
            .ok_or_else(|| super::bad_position("nexmark", position))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(seed: u64, n: u64) -> Vec<String> {
        let e = Events::new(seed);
        (0..n)
            .map(|i| {
                let mut s = String::new();
                e.write(i, i as i64, &mut s);
                s
            })
            .collect()
    }

    #[test]
    fn events_keep_nexmarks_proportions_sizes_and_hot_auction() {
        let all = lines(3, 50_000);
        let of = |k: &str| all.iter().filter(|l| l.starts_with(k)).collect::<Vec<_>>();
        let (p, a, b) = (of("P,"), of("A,"), of("B,"));
        assert_eq!((p.len(), a.len(), b.len()), (1_000, 3_000, 46_000));
        let avg = |v: &[&String]| v.iter().map(|l| l.len()).sum::<usize>() as f64 / v.len() as f64;
        for (v, want) in [(&p, 200.0), (&a, 500.0), (&b, 100.0)] {
            let got = avg(v);
            assert!(
                (want * 0.9..want * 1.1).contains(&got),
                "average {got} bytes, want about {want}"
            );
        }
        // Person and auction ids count up from 1000, one each per creation.
        assert!(
            p[0].starts_with("P,1000,") && p[999].starts_with("P,1999,"),
            "{} / {}",
            p[0],
            p[999]
        );
        assert!(a[0].starts_with("A,1000,") && a[2999].starts_with("A,3999,"));
        // Half the bids go to a hot auction (a multiple of 100 above 1000).
        let hot = b
            .iter()
            .filter(|l| l.split(',').nth(1).unwrap().parse::<u64>().unwrap() % 100 == 0)
            .count();
        let share = hot as f64 / b.len() as f64;
        assert!((0.45..0.6).contains(&share), "hot share {share}");
        for l in &b {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 8, "{l}");
            let price: u64 = f[3].parse().unwrap();
            assert!((100..=100_000_000).contains(&price), "{l}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_events_and_another_seed_others() {
        assert_eq!(lines(7, 200), lines(7, 200));
        assert_ne!(lines(7, 200), lines(8, 200));
    }

    #[test]
    fn batches_cover_their_interval_and_a_seek_gives_them_again() {
        let tick = |k: u64| Tick {
            batch_id: k,
            time_ms: k as i64 * 1000,
        };
        let mut s = NexmarkSource::new(1, 5_000, Some(12_000), false, 1000);
        assert_eq!(s.batches_hint(), Some(3));
        let b1 = s.next_batch(tick(1)).unwrap();
        assert_eq!(b1.len(), 5_000);
        let stamps: Vec<i64> = b1.iter().map(|r| r.timestamp_ms).collect();
        assert_eq!((stamps[0], *stamps.last().unwrap()), (0, 999));
        assert!(stamps.windows(2).all(|w| w[0] <= w[1]));
        let at = s.position().unwrap();
        let values = |b: RecordBatch| -> Vec<Vec<u8>> { b.iter().map(|r| r.value.to_vec()).collect() };
        let b2 = values(s.next_batch(tick(2)).unwrap());
        assert_eq!(s.next_batch(tick(3)).unwrap().len(), 2_000);
        assert_eq!(s.next_batch(tick(4)).unwrap().len(), 0);
        s.seek(&at).unwrap();
        assert_eq!(b2, values(s.next_batch(tick(2)).unwrap()));
    }
}
