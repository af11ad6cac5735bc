//! Rough timing of the store's hot paths (import, fresh open + head, full iteration, verify)
//! for sizing decisions; it deliberately checks no results and is not part of the test suite.
//! Usage: `cargo run --release -p store --example bench_import -- DIR [EVENTS] [BATCH]`.

use std::time::Instant;

use store::{NewEvent, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or("usage: bench_import DIR [EVENTS] [BATCH]")?;
    let events: usize = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let batch_size: usize = args.next().map_or(Ok(100_000), |a| a.parse())?;
    let path = std::path::Path::new(&dir);

    let started = Instant::now();
    {
        let store = Store::create_or_open(path)?;
        let mut next = 0usize;
        while next < events {
            let end = (next + batch_size).min(events);
            let ids: Vec<String> = (next..end).map(|i| format!("evt-{i:08}")).collect();
            let bodies: Vec<Vec<u8>> = (next..end)
                .map(|i| {
                    format!(r#"{{"type":"deal.amended","deal":"D-{:06}","amount":"{}.25","currency":"EUR"}}"#, i % 5000, i)
                        .into_bytes()
                })
                .collect();
            let batch: Vec<NewEvent<'_>> = ids
                .iter()
                .zip(&bodies)
                .map(|(id, body)| NewEvent { id, body })
                .collect();
            store.append(&batch, chrono::Utc::now())?;
            next = end;
        }
    }
    println!("import: {:?}", started.elapsed());

    let started = Instant::now();
    let store = Store::open_existing(path)?;
    let head = store.head()?;
    println!(
        "open + head: {:?} ({:?})",
        started.elapsed(),
        head.map(|h| h.seq)
    );

    let started = Instant::now();
    let mut n = 0u64;
    for record in store.iter() {
        record?;
        n += 1;
    }
    println!("iterate {n}: {:?}", started.elapsed());

    let started = Instant::now();
    let head = store.verify()?;
    println!(
        "verify: {:?} ({:?})",
        started.elapsed(),
        head.map(|h| h.seq)
    );
    Ok(())
}
