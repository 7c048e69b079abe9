//! Hostile UDFs, built for the sandbox tests: each misbehaves in one way the host must contain
//! (endless loop, memory bomb, endless recursion, trap, panic, oversized output), plus a
//! well-behaved one that logs, to prove the module stays usable after the others fail.

use std::hint::black_box;

use sluice_guest::{Record, UdfError, flat_map, map};

/// Never returns.
#[map]
pub fn spin(record: Record) -> Record {
    let mut n = 0u64;
    while black_box(n) != u64::MAX || black_box(true) {
        n = n.wrapping_add(1);
    }
    record
}

/// Allocates 1 MiB after 1 MiB and keeps them all, until the memory limit stops it.
#[map]
pub fn memory_bomb(record: Record) -> Record {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(black_box(vec![1u8; 1 << 20]));
        if black_box(hoard.len()) == usize::MAX {
            break;
        }
    }
    record
}

/// Recursion that keeps only scalars, so it lives on the wasm stack itself.
#[inline(never)]
fn descend(depth: u64, data: &[u8]) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    let below = descend(depth + 1, data);
    below.rotate_left(7) ^ u64::from(data[(depth as usize) % data.len().max(1)]) ^ depth
}

/// Recursion with an address-taken array per frame, so it lives on the stack the compiler
/// keeps in linear memory (the "shadow stack" of wasm32 Rust programs).
#[inline(never)]
fn descend_in_memory(depth: u64) -> u64 {
    let frame = black_box([depth; 32]);
    if black_box(depth) == u64::MAX {
        return 0;
    }
    descend_in_memory(depth + 1).wrapping_add(frame[(depth % 32) as usize])
}

/// Recurses without end on the wasm stack.
#[map]
pub fn recurse(record: Record) -> Record {
    let d = descend(0, &record.value);
    record.with_timestamp(d as i64)
}

/// Recurses without end on the stack in linear memory.
#[map]
pub fn recurse_in_memory(record: Record) -> Record {
    let d = descend_in_memory(black_box(0));
    record.with_timestamp(d as i64)
}

/// Executes a trap instruction (`unreachable`) without panicking.
#[map]
pub fn trap(_record: Record) -> Record {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}

/// Traps on the record `poison` (a poison record), passes every other one through.
#[map]
pub fn trap_on_poison(record: Record) -> Record {
    if record.value[..] == b"poison"[..] {
        #[cfg(target_arch = "wasm32")]
        core::arch::wasm32::unreachable();
        #[cfg(not(target_arch = "wasm32"))]
        std::process::abort();
    }
    record
}

/// Panics with a message that names the record.
#[map]
pub fn panics(record: Record) -> Record {
    let text = String::from_utf8_lossy(&record.value).into_owned();
    panic!("boom on record {text:?}");
}

/// Emits 1,024 copies of a 1 KiB record per input: 1 MiB per record, to hit the output cap.
#[flat_map]
pub fn flood(record: Record) -> Vec<Record> {
    let big = vec![b'x'; 1024];
    (0..1024)
        .map(|_| Record::new(big.clone()).with_timestamp(record.timestamp_ms))
        .collect()
}

/// Logs the record at every level and returns it unchanged.
#[map]
pub fn chatty(record: Record) -> Result<Record, UdfError> {
    let text = record.value_str()?;
    sluice_guest::debug!("debug: {text}");
    sluice_guest::info!("info: {text}");
    sluice_guest::warn!("warn: {text}");
    Ok(record)
}

/// Burns CPU: loops as many million times as the record's value says (a well-behaved but slow
/// UDF, for tests of time limits under load), then passes the record through.
#[map]
pub fn burn(record: Record) -> Record {
    let millions: u64 = std::str::from_utf8(&record.value)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1);
    let mut x = 0u64;
    for i in 0..millions.saturating_mul(1_000_000) {
        x = black_box(x.wrapping_mul(31).wrapping_add(i));
    }
    black_box(x);
    record
}
