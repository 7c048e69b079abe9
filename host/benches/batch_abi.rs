//! The wasm batch path against the same logic as a native Rust closure over the same buffer.
//!
//! Run: `cargo bench -p sluice --bench batch_abi` (add `-- --quick` for a shorter run).
//!
//! For map (`parse_behavior`), filter (`is_click`), filter+map (`clicks_by_user`, fused) and reduce
//! (`sum_counts` over 100 keys), at 1k, 10k and 100k records of ~40-byte CSV lines:
//! - **wasm**: `UdfInstance::{map,filter,flat_map,reduce}` on a warm instance, epoch interruption
//!   on: copy the batch in, one call, bounds-checked decode of the output into host types (for a
//!   filter, the host gathers the kept records from its own buffer);
//! - **native**: the SDK's batch loop (`sluice_guest::rt::run_*`) with the same UDF function,
//!   compiled natively, over the same input bytes, writing the same output layout.
//!
//! Also the fixed cost of one batch call (an empty batch) and of instantiating a cached module.
//! Criterion measures; the table at the end prints ns/record and the wasm/native ratio, all from
//! this one run. Batches cycle through a pool of 200k distinct records so the branch predictor
//! cannot learn one batch.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use sluice::batch::{RecordBatch, ValueGroups};
use sluice::runtime::{Runtime, RuntimeConfig};
use sluice_guest::rt::{run_filter, run_flat_map, run_map, run_reduce};
use sluice_guest::{FilterOutput, FlatMapOutput, MapOutput};
use sluice_udf_examples as ex;

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];
const POOL_RECORDS: usize = 200_000;

thread_local! {
    /// (op, variant, size) -> per-iteration durations of each criterion sample.
    static SAMPLES: RefCell<BTreeMap<(String, String, usize), Vec<f64>>> = RefCell::default();
}

fn record(op: &str, variant: &str, size: usize, iters: u64, took: Duration) -> Duration {
    SAMPLES.with(|s| {
        s.borrow_mut()
            .entry((op.to_owned(), variant.to_owned(), size))
            .or_default()
            .push(took.as_secs_f64() / iters as f64)
    });
    took
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `user_id,timestamp,action,item_id`, ~40 bytes, a quarter of them clicks.
fn line(i: u64) -> String {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5851_F42D_4C95_7F2D;
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    let action = ["view", "click", "scroll", "purchase"][(x % 4) as usize];
    format!(
        "{},{},{action},/products/item/{}",
        10_000 + x % 90_000,
        1_700_000_000 + (x >> 20) % 100_000,
        (x >> 40) % 10_000
    )
}

fn pool(size: usize) -> Vec<RecordBatch> {
    let batches = (POOL_RECORDS / size).max(2);
    (0..batches)
        .map(|b| {
            let mut batch = RecordBatch::new();
            for i in 0..size {
                batch.push(None, line((b * size + i) as u64).as_bytes(), 0);
            }
            batch
        })
        .collect()
}

/// The reduce input: each batch's records grouped into 100 keys, values `1i64`.
fn groups(size: usize, count: usize) -> Vec<ValueGroups> {
    (0..count)
        .map(|_| {
            let mut g = ValueGroups::new();
            let per_key = size / 100;
            for _ in 0..100 {
                g.start_group();
                for _ in 0..per_key {
                    g.push_value(&1i64.to_le_bytes());
                }
            }
            g
        })
        .collect()
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let rt = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let module = rt
        .load("examples@1", sluice_udf_artifacts::EXAMPLES)
        .expect("examples load");
    let mut inst = rt.instantiate(&module, &rt.config().default_limits).expect("instance");

    for size in SIZES {
        let batches = pool(size);
        let mut reduce_in = groups(size, 2);
        let mut g = c.benchmark_group(format!("batch_{size}"));
        g.throughput(criterion::Throughput::Elements(size as u64));
        let mut out = Vec::with_capacity(1 << 20);

        macro_rules! pair {
            ($op:literal, wasm: |$wb:ident| $wasm:expr, native: |$nb:ident, $o:ident| $native:expr) => {
                g.bench_function(BenchmarkId::new(concat!($op, "/wasm"), size), |b| {
                    b.iter_custom(|iters| {
                        let t = Instant::now();
                        for i in 0..iters {
                            let $wb = &batches[i as usize % batches.len()];
                            std::hint::black_box($wasm);
                        }
                        record($op, "wasm", size, iters, t.elapsed())
                    })
                });
                g.bench_function(BenchmarkId::new(concat!($op, "/native"), size), |b| {
                    b.iter_custom(|iters| {
                        let t = Instant::now();
                        for i in 0..iters {
                            let $nb = batches[i as usize % batches.len()].as_abi_bytes();
                            let $o = &mut out;
                            $o.clear();
                            std::hint::black_box($native);
                        }
                        record($op, "native", size, iters, t.elapsed())
                    })
                });
            };
        }

        pair!("map", wasm: |b| inst.map("parse_behavior", b).unwrap().records.len(),
              native: |b, o| run_map(b, o, |r| MapOutput::into_result(ex::parse_behavior(r))).unwrap());
        pair!("filter", wasm: |b| inst.filter("is_click", b).unwrap().kept.len(),
              native: |b, o| run_filter(b, o, |r| FilterOutput::into_result(ex::is_click(r))).unwrap());
        pair!("filter+map", wasm: |b| inst.flat_map("clicks_by_user", b).unwrap().records.len(),
              native: |b, o| run_flat_map(b, o, |r, e| FlatMapOutput::emit(ex::clicks_by_user(r), &mut |rec| e.push(&rec))).unwrap());

        g.bench_function(BenchmarkId::new("reduce/wasm", size), |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                for i in 0..iters {
                    let input = &mut reduce_in[i as usize % 2];
                    std::hint::black_box(inst.reduce("sum_counts", input).unwrap().values.len());
                }
                record("reduce", "wasm", size, iters, t.elapsed())
            })
        });
        g.bench_function(BenchmarkId::new("reduce/native", size), |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                for i in 0..iters {
                    let input = reduce_in[i as usize % 2].as_abi_bytes();
                    out.clear();
                    run_reduce::<i64>(input, &mut out, |a, b| Ok(ex::sum_counts(a, b))).unwrap();
                    std::hint::black_box(out.len());
                }
                record("reduce", "native", size, iters, t.elapsed())
            })
        });
        g.finish();
    }

    let empty = RecordBatch::new();
    c.bench_function("fixed/empty_batch_call", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                std::hint::black_box(inst.map("parse_behavior", &empty).unwrap());
            }
            record("fixed", "empty batch call", 0, iters, t.elapsed())
        })
    });
    let limits = rt.config().default_limits.clone();
    c.bench_function("fixed/instantiate_cached_module", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                std::hint::black_box(rt.instantiate(&module, &limits).unwrap());
            }
            record("fixed", "instantiate", 0, iters, t.elapsed())
        })
    });
    c.final_summary();
    print_table();
}

fn print_table() {
    SAMPLES.with(|s| {
        let s = s.borrow();
        println!("\nwasm batch path vs native closure, median of criterion samples (epoch interruption on)");
        println!(
            "{:<11} {:>8} {:>14} {:>16} {:>12}",
            "op", "records", "wasm ns/rec", "native ns/rec", "wasm/native"
        );
        for op in ["map", "filter", "filter+map", "reduce"] {
            for size in SIZES {
                let (Some(w), Some(n)) = (
                    s.get(&(op.into(), "wasm".into(), size)),
                    s.get(&(op.into(), "native".into(), size)),
                ) else {
                    continue;
                };
                let (w, n) = (median(w) * 1e9 / size as f64, median(n) * 1e9 / size as f64);
                println!("{op:<11} {size:>8} {w:>14.2} {n:>16.2} {:>11.2}x", w / n);
            }
        }
        for (label, key) in [
            ("fixed cost of one batch call (empty batch)", "empty batch call"),
            ("instantiate a cached module", "instantiate"),
        ] {
            if let Some(v) = s.get(&("fixed".into(), key.into(), 0)) {
                println!("{label}: {:.2} us", median(v) * 1e6);
            }
        }
    });
}
