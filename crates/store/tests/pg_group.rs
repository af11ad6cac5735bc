//! A group of batches in one PostgreSQL transaction is committed whole or not at all: when
//! one of its statements fails, the database aborts the transaction (and a `COMMIT` would
//! quietly roll it back), so `flush` must fail and no batch of the group may be acknowledged.
//! Against a throwaway cluster (`testkit::pg`); without PostgreSQL it says so and passes,
//! unless `CI=true`.

use std::path::Path;

use store::{Access, NewEvent, Opening};

fn open(url: &str) -> Box<dyn store::Backend> {
    store::open_with(
        Path::new(url),
        Access::Write,
        &Opening {
            wait: std::time::Duration::ZERO,
            holder: None,
        },
    )
    .expect("the ledger opens")
}

fn event<'a>(id: &'a str, body: &'a [u8]) -> NewEvent<'a> {
    NewEvent { id, body }
}

#[test]
fn a_group_with_a_failed_statement_commits_nothing() {
    let Some(pg) = testkit::pg::Cluster::start() else {
        return;
    };
    let url = pg.url("grouped");
    let ledger = open(&url);
    let now = chrono::Utc::now();
    {
        let mut txn = ledger.write().unwrap();
        txn.commit(&[event("a", b"{\"a\":1}")], now, &[]).unwrap();
    }
    let mut txn = ledger.write().unwrap();
    txn.group();
    // The first batch of the group is applied...
    txn.commit(&[event("b", b"{\"b\":1}")], now, &[]).unwrap();
    // ...the second breaks a constraint (an id already recorded: the unique index refuses
    // it), which aborts the whole transaction.
    assert!(txn.commit(&[event("a", b"{\"a\":2}")], now, &[]).is_err());
    let flushed = txn.flush();
    assert!(flushed.is_err(), "the group was acknowledged: {flushed:?}");
    drop(txn);
    let read = ledger.read().unwrap();
    assert_eq!(
        read.len(),
        1,
        "the log holds only what was committed before"
    );
    assert_eq!(read.seq_of("b").unwrap(), None);
    assert!(read.verify().is_ok());
    drop(read);
    // The ledger takes the next write as usual.
    let mut txn = ledger.write().unwrap();
    txn.commit(&[event("c", b"{\"c\":1}")], now, &[]).unwrap();
    drop(txn);
    assert_eq!(ledger.read().unwrap().len(), 2);
}
