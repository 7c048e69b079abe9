use sluice_guest::{Record, map};

#[map]
fn is_long(record: Record) -> bool {
    record.value.len() > 10
}

fn main() {}
