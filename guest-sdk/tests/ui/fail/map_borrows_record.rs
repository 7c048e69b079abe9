use sluice_guest::{Record, map};

#[map]
fn same(record: &Record) -> Record<'static> {
    record.clone().into_owned()
}

fn main() {}
