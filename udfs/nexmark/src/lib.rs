//! Nexmark's queries q0, q1, q2, q5 and q7 as UDFs, over the events of the `nexmark` source.
//!
//! Each event is a line of comma-separated fields whose first field names its kind (see
//! `docs/nexmark.md`):
//!
//! - `P,id,name,email,credit_card,city,state,date_time,extra`
//! - `A,id,item_name,description,initial_bid,reserve,date_time,expires,seller,category,extra`
//! - `B,auction,bidder,price,channel,url,date_time,extra`
//!
//! Times are milliseconds, prices cents. The jobs that use these functions are in
//! `docs/nexmark.md`; the windows (q5's 10 s sliding every 2 s, q7's 10 s tumbling) are the
//! engine's, the per-window "keep the maximum" folds are `reduce` UDFs here.

use sluice_guest::{Many, Record, UdfError, filter, flat_map, map, reduce, text};

/// q0, pass-through: every event as it came (what the source, the wasm boundary and the sink
/// cost with no work).
#[map]
pub fn pass_through(record: Record) -> Result<Record, UdfError> {
    Ok(record)
}

/// q1, currency conversion: a bid's price from dollars to euros (`price * 908 / 1000`, in
/// integer cents, rounded down), as `auction,bidder,price,date_time,extra`. Other events give
/// nothing.
#[flat_map]
pub fn dollars_to_euros(record: Record) -> Result<Option<Record>, UdfError> {
    let Some(bid) = bid(&record)? else { return Ok(None) };
    let euros = (bid.price as i128 * 908 / 1000) as i64;
    let value = format!("{},{},{euros},{},{}", bid.auction, bid.bidder, bid.date_time, bid.extra);
    Ok(Some(Record::new(value).with_timestamp(record.timestamp_ms)))
}

/// q2, selection: keeps the bids on auctions whose id is a multiple of 123.
#[filter]
pub fn auction_mod_123(record: &Record) -> Result<bool, UdfError> {
    Ok(bid(record)?.is_some_and(|b| b.auction % 123 == 0))
}

/// q2's projection: a bid as `auction,price`.
#[map]
pub fn auction_price(record: Record) -> Result<Record, UdfError> {
    let b = bid(&record)?.ok_or_else(|| not_a_bid(&record))?;
    let value = format!("{},{}", b.auction, b.price);
    Ok(Record::new(value).with_timestamp(record.timestamp_ms))
}

/// q5, first step: a bid as `(auction, 1)`, for a count per auction in each window. Other events
/// give nothing.
#[flat_map]
pub fn bids_by_auction(record: Record) -> Result<Option<Record>, UdfError> {
    let Some(b) = bid(&record)? else { return Ok(None) };
    Ok(Some(
        Record::keyed(b.auction.to_string(), 1i64).with_timestamp(record.timestamp_ms),
    ))
}

/// q5: `(auction, count)` as the value `count:auction`, so one fold over the window's records
/// can keep the largest count and every auction that has it.
#[map]
pub fn count_entry(record: Record) -> Result<Record, UdfError> {
    let auction = record.key_str()?.ok_or("a count by auction has its auction as key")?;
    let count = record.value_i64()?;
    let value = format!("{count}:{auction}");
    Ok(Record::new(value).with_timestamp(record.timestamp_ms))
}

/// q5's "then max": of two `count:auction[,auction...]` entries the one with the larger count;
/// on a tie both auction lists, merged in order (so the result does not depend on the order of
/// the fold).
#[reduce]
pub fn most_bids(a: String, b: String) -> Result<String, UdfError> {
    let (ca, la) = a.split_once(':').ok_or_else(|| not_an_entry(&a))?;
    let (cb, lb) = b.split_once(':').ok_or_else(|| not_an_entry(&b))?;
    let ca = text::parse_i64(ca).ok_or_else(|| not_an_entry(&a))?;
    let cb = text::parse_i64(cb).ok_or_else(|| not_an_entry(&b))?;
    Ok(match ca.cmp(&cb) {
        std::cmp::Ordering::Greater => a,
        std::cmp::Ordering::Less => b,
        std::cmp::Ordering::Equal => format!("{ca}:{}", merge_ids(la, lb)?),
    })
}

/// q5's output: a `count:auction[,auction...]` entry as one `(auction, count)` per auction.
#[flat_map]
pub fn hot_items(record: Record<'_>) -> Result<Many<impl Iterator<Item = Record<'_>>>, UdfError> {
    let ts = record.timestamp_ms;
    let entry = record.value_text()?;
    let (count, auctions) = entry.split_once(':').ok_or_else(|| not_an_entry(entry))?;
    let count = text::parse_i64(count).ok_or_else(|| not_an_entry(entry))?;
    Ok(Many(
        auctions
            .split(',')
            .map(move |a| Record::keyed(a, count).with_timestamp(ts)),
    ))
}

/// q7, first step: keeps the bids.
#[filter]
pub fn is_bid(record: &Record) -> Result<bool, UdfError> {
    Ok(record.value.starts_with(b"B,"))
}

/// q7's fold: of two sets of bids (lines joined by `\n`, all of one price) the ones with the
/// higher price; on a tie both, in order.
#[reduce]
pub fn highest_bid(a: String, b: String) -> Result<String, UdfError> {
    let pa = price_of(first_line(&a))?;
    let pb = price_of(first_line(&b))?;
    Ok(match pa.cmp(&pb) {
        std::cmp::Ordering::Greater => a,
        std::cmp::Ordering::Less => b,
        std::cmp::Ordering::Equal => {
            let mut lines: Vec<&str> = a.split('\n').chain(b.split('\n')).collect();
            lines.sort_unstable();
            lines.join("\n")
        }
    })
}

/// q7's output: each highest bid as `auction,price,bidder,date_time,extra`.
#[flat_map]
pub fn highest_bids(record: Record) -> Result<Vec<Record>, UdfError> {
    let ts = record.timestamp_ms;
    let lines = record.value_str()?;
    lines
        .split('\n')
        .map(|line| {
            let b = parse_bid(line)?;
            let value = format!("{},{},{},{},{}", b.auction, b.price, b.bidder, b.date_time, b.extra);
            Ok(Record::new(value).with_timestamp(ts))
        })
        .collect()
}

/// The fields of a bid the queries read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bid<'a> {
    /// The auction's id.
    pub auction: i64,
    /// The bidder's (a person's) id.
    pub bidder: i64,
    /// In cents.
    pub price: i64,
    /// Event time, milliseconds.
    pub date_time: i64,
    /// Padding.
    pub extra: &'a str,
}

/// The bid a record holds, or `None` for another kind of event.
fn bid<'a>(record: &Record<'a>) -> Result<Option<Bid<'a>>, UdfError> {
    if !record.value.starts_with(b"B,") {
        return Ok(None);
    }
    parse_bid(record.value_text()?).map(Some)
}

/// Parses `B,auction,bidder,price,channel,url,date_time,extra`.
pub fn parse_bid(line: &str) -> Result<Bid<'_>, UdfError> {
    const FORMAT: &str = "B,auction,bidder,price,channel,url,date_time,extra";
    let [kind, auction, bidder, price, _channel, _url, date_time, extra] =
        text::fields::<8>(line, b',').ok_or_else(|| UdfError::malformed(line, format!("expected {FORMAT}")))?;
    if kind != "B" {
        return Err(UdfError::malformed(line, format!("expected {FORMAT}")));
    }
    let number = |s: &str, name: &str| {
        text::parse_i64(s).ok_or_else(|| UdfError::malformed(line, format!("{name} `{s}` is not an integer")))
    };
    Ok(Bid {
        auction: number(auction, "auction")?,
        bidder: number(bidder, "bidder")?,
        price: number(price, "price")?,
        date_time: number(date_time, "date_time")?,
        extra,
    })
}

fn first_line(s: &str) -> &str {
    s.split_once('\n').map_or(s, |(l, _)| l)
}

fn price_of(line: &str) -> Result<i64, UdfError> {
    Ok(parse_bid(line)?.price)
}

/// Two ascending comma-separated id lists as one.
fn merge_ids(a: &str, b: &str) -> Result<String, UdfError> {
    let parse = |l: &str| -> Result<Vec<i64>, UdfError> {
        l.split(',')
            .map(|s| text::parse_i64(s).ok_or_else(|| UdfError::new(format!("`{s}` is not an auction id"))))
            .collect()
    };
    let mut ids = parse(a)?;
    ids.extend(parse(b)?);
    ids.sort_unstable();
    ids.dedup();
    Ok(ids.iter().map(i64::to_string).collect::<Vec<_>>().join(","))
}

#[cold]
fn not_a_bid(record: &Record) -> UdfError {
    UdfError::malformed(
        &String::from_utf8_lossy(&record.value),
        "expected a bid (B,auction,bidder,price,channel,url,date_time,extra)",
    )
}

#[cold]
fn not_an_entry(s: &str) -> UdfError {
    UdfError::malformed(s, "expected count:auction[,auction...]")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BID: &str = "B,1007,1203,250000,Google,https://www.nexmark.com/a/b/c/item.htm?query=1,4500,xyz";

    #[test]
    fn a_bid_parses_and_converts() {
        let b = parse_bid(BID).unwrap();
        assert_eq!(
            (b.auction, b.bidder, b.price, b.date_time, b.extra),
            (1007, 1203, 250000, 4500, "xyz")
        );
        let out = dollars_to_euros(Record::new(BID)).unwrap().unwrap();
        assert_eq!(out.value_str().unwrap(), "1007,1203,227000,4500,xyz");
        assert!(
            dollars_to_euros(Record::new("P,1000,peter walton,a@b.com,1 2 3 4,boise,ID,0,x"))
                .unwrap()
                .is_none()
        );
        assert!(parse_bid("B,1,2").is_err());
    }

    #[test]
    fn q2_keeps_multiples_of_123() {
        assert!(auction_mod_123(&Record::new("B,1230,1,5,c,u,0,")).unwrap());
        assert!(!auction_mod_123(&Record::new("B,1231,1,5,c,u,0,")).unwrap());
        assert!(!auction_mod_123(&Record::new("A,1230,i,d,1,2,0,5,1000,10,")).unwrap());
        let out = auction_price(Record::new("B,1230,1,5,c,u,0,")).unwrap();
        assert_eq!(out.value_str().unwrap(), "1230,5");
    }

    #[test]
    fn the_most_bids_keeps_every_auction_of_the_largest_count_whatever_the_order() {
        let m = |a: &str, b: &str| most_bids(a.to_owned(), b.to_owned()).unwrap();
        assert_eq!(m("3:1001", "5:1002"), "5:1002");
        assert_eq!(m("5:1002", "3:1001"), "5:1002");
        assert_eq!(m("5:1003", "5:1002"), "5:1002,1003");
        assert_eq!(m(&m("5:1003", "5:1001"), "5:1002"), m("5:1002", &m("5:1001", "5:1003")));
        assert!(most_bids("x".into(), "5:1".into()).is_err());
        let out = hot_items(Record::new("5:1002,1003")).unwrap();
        let got: Vec<_> = out
            .0
            .map(|r| (r.key_str().unwrap().unwrap().to_owned(), r.value_i64().unwrap()))
            .collect();
        assert_eq!(got, [("1002".to_owned(), 5), ("1003".to_owned(), 5)]);
    }

    #[test]
    fn the_highest_bid_keeps_ties_in_order() {
        let a = "B,1,2,300,c,u,10,x".to_owned();
        let b = "B,3,4,300,c,u,11,y".to_owned();
        let c = "B,5,6,200,c,u,12,z".to_owned();
        assert_eq!(highest_bid(a.clone(), c.clone()).unwrap(), a);
        assert_eq!(highest_bid(c, b.clone()).unwrap(), b);
        let tie = highest_bid(b.clone(), a.clone()).unwrap();
        assert_eq!(tie, format!("{a}\n{b}"));
        let out = highest_bids(Record::new(tie)).unwrap();
        let got: Vec<_> = out.iter().map(|r| r.value_str().unwrap().to_owned()).collect();
        assert_eq!(got, ["1,300,2,10,x", "3,300,4,11,y"]);
    }
}
