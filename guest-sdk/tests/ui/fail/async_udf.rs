use sluice_guest::{Record, map};

#[map]
async fn f(record: Record<'_>) -> Record<'_> {
    record
}

fn main() {}
