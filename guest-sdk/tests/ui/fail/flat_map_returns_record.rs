use sluice_guest::{Record, flat_map};

#[flat_map]
fn one(record: Record) -> Record {
    record
}

fn main() {}
