use sluice_guest::{Record, map};

#[map]
fn nothing(record: Record) {
    let _ = record;
}

fn main() {}
