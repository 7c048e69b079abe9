use sluice_guest::{Record, map};

#[map(inverse = g)]
fn f(record: Record) -> Record {
    record
}

fn main() {}
