use sluice_guest::reduce;

#[reduce]
fn add(a: u8, b: u8) -> u8 {
    a.wrapping_add(b)
}

fn main() {}
