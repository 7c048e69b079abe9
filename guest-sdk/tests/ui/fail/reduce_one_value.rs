use sluice_guest::reduce;

#[reduce]
fn double(a: i64) -> i64 {
    a * 2
}

fn main() {}
