use sluice_guest::{Record, filter};

#[filter]
fn keep(record: Record) -> bool {
    !record.value.is_empty()
}

fn main() {}
