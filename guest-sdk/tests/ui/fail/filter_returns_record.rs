use sluice_guest::{Record, filter};

#[filter]
fn keep<'a>(record: &Record<'a>) -> Record<'a> {
    record.clone()
}

fn main() {}
