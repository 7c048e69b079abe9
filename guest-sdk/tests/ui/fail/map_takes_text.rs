use sluice_guest::{Record, map};

#[map]
fn upper(line: &str) -> Record<'static> {
    Record::new(line.to_uppercase())
}

fn main() {}
