//! The feed in PostgreSQL: the feed lock, filing rows, and reading a pull page's snapshot.
//!
//! **Feed order.** A pull cursor is a feed `seq`. With concurrent writers, sequence numbers
//! are handed out in one order and committed in another: `seq 11` can be visible while
//! `seq 10` is still in flight, and a reader that moves its cursor past 11 never sees 10.
//! Every transaction that writes feed rows therefore first takes one transaction-scoped
//! advisory lock ([`FEED_LOCK`]) and keeps it until it commits (PostgreSQL releases it only
//! after the commit is visible), so sequence numbers are allocated in commit order and every
//! snapshot sees a prefix of the feed. Pushes are serialised across instances by it; pulls
//! and catching up take no lock.

use crate::cursor::FeedSnapshot;
use crate::error::Result;
use crate::storage::FeedRow;
use doorstep_core::Op;
use postgres::GenericClient;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use uuid::Uuid;

/// The advisory lock every feed-writing transaction holds until it commits ("DOORFEED").
pub const FEED_LOCK: i64 = 0x444F_4F52_4645_4544;

/// How many times this process took the feed lock, and the nanoseconds it waited for it.
static FEED_LOCK_TAKEN: AtomicU64 = AtomicU64::new(0);
static FEED_LOCK_WAIT_NS: AtomicU64 = AtomicU64::new(0);

/// `(times taken, total nanoseconds waited)` for [`FEED_LOCK`] in this process.
pub fn feed_lock_stats() -> (u64, u64) {
    (
        FEED_LOCK_TAKEN.load(Ordering::Relaxed),
        FEED_LOCK_WAIT_NS.load(Ordering::Relaxed),
    )
}

/// Take the feed lock: from here to the commit, this transaction is the only feed writer.
pub(super) fn lock_feed(c: &mut impl GenericClient) -> Result<()> {
    let started = std::time::Instant::now();
    c.execute("SELECT pg_advisory_xact_lock($1)", &[&FEED_LOCK])?;
    FEED_LOCK_WAIT_NS.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
    FEED_LOCK_TAKEN.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Append operations to the feed (the caller holds [`FEED_LOCK`]), in the given order.
pub(super) fn insert_feed(c: &mut impl GenericClient, rows: &[FeedRow<'_>]) -> Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let replicas: Vec<Vec<u8>> = rows
        .iter()
        .map(|r| r.op.replica.0.as_bytes().to_vec())
        .collect();
    let counters: Vec<i64> = rows.iter().map(|r| r.op.counter as i64).collect();
    let areas: Vec<Option<&str>> = rows.iter().map(|r| r.area).collect();
    let bodies: Vec<Vec<u8>> = rows.iter().map(|r| r.op.encode()).collect();
    let froms: Vec<Option<&str>> = rows.iter().map(|r| r.from).collect();
    let moved: Vec<Option<String>> = rows.iter().map(FeedRow::moved).collect();
    Ok(c.execute(
        "INSERT INTO feed (replica, counter, area, op, from_area, moved)
         SELECT r, c, a, o, f, m
         FROM unnest($1::bytea[], $2::int8[], $3::text[], $4::bytea[], $5::text[], $6::text[])
              WITH ORDINALITY AS t(r, c, a, o, f, m, n)
         ORDER BY n
         ON CONFLICT (replica, counter) DO NOTHING",
        &[&replicas, &counters, &areas, &bodies, &froms, &moved],
    )?)
}

/// The moves in the feed, read in the push's transaction (under the feed lock: everything
/// committed is there).
pub(super) struct PgMoves<'a, 'b> {
    pub(super) tx: &'a mut postgres::Transaction<'b>,
}

impl crate::scope::Moves for PgMoves<'_, '_> {
    fn moves_of(&mut self, id: &str) -> Result<Vec<(String, Op)>> {
        self.tx
            .query(
                "SELECT from_area, op FROM feed
                 WHERE moved = $1 AND from_area IS NOT NULL ORDER BY seq",
                &[&id],
            )?
            .into_iter()
            .map(|r| {
                let from: String = r.try_get(0)?;
                let body: &[u8] = r.try_get(1)?;
                Ok((from, Op::decode(body)?))
            })
            .collect()
    }
}

/// Feed rows `(seq, op)` from a query whose columns are `seq, op`.
pub(super) fn feed_ops(rows: Vec<postgres::Row>) -> Result<Vec<(u64, Op)>> {
    rows.into_iter()
        .map(|r| {
            let seq: i64 = r.try_get(0)?;
            let body: &[u8] = r.try_get(1)?;
            Ok((seq as u64, Op::decode(body)?))
        })
        .collect()
}

/// The feed in one repeatable-read snapshot, for [`crate::cursor::pull_page`]; leaves out
/// `replica`'s rows. The snapshot is a prefix of the feed (feed writers hold [`FEED_LOCK`] to
/// their commit).
pub(super) struct PgFeed<'a, 'b> {
    pub(super) tx: &'a mut postgres::Transaction<'b>,
    pub(super) replica: Uuid,
}

impl FeedSnapshot for PgFeed<'_, '_> {
    fn area_rows(
        &mut self,
        area: &str,
        after: u64,
        until: u64,
        n: usize,
    ) -> Result<Vec<(u64, Op)>> {
        feed_ops(self.tx.query(
            "SELECT seq, op FROM feed
             WHERE area = $1 AND seq > $2 AND seq <= $3 AND replica != $5
             ORDER BY seq LIMIT $4",
            &[
                &area,
                &(after as i64),
                &(until as i64),
                &(n as i64),
                &self.replica.as_bytes().as_slice(),
            ],
        )?)
    }

    fn rows_after(
        &mut self,
        areas: &BTreeSet<String>,
        after: u64,
        n: usize,
    ) -> Result<Vec<(u64, Op)>> {
        let areas: Vec<&str> = areas.iter().map(String::as_str).collect();
        feed_ops(self.tx.query(
            "SELECT seq, op FROM feed
             WHERE seq > $1 AND (area IS NULL OR area = ANY($2)) AND replica != $4
             ORDER BY seq LIMIT $3",
            &[
                &(after as i64),
                &areas,
                &(n as i64),
                &self.replica.as_bytes().as_slice(),
            ],
        )?)
    }

    fn own_rows(&mut self, after: u64, n: usize) -> Result<Vec<Op>> {
        let rows = feed_ops(self.tx.query(
            "SELECT seq, op FROM feed WHERE replica = $1 AND counter > $2
             ORDER BY counter LIMIT $3",
            &[
                &self.replica.as_bytes().as_slice(),
                &(after as i64),
                &(n as i64),
            ],
        )?)?;
        Ok(rows.into_iter().map(|(_, op)| op).collect())
    }

    fn moves_from(
        &mut self,
        from: &BTreeSet<String>,
        after: u64,
        until: u64,
    ) -> Result<Vec<(u64, Op)>> {
        let from: Vec<&str> = from.iter().map(String::as_str).collect();
        feed_ops(self.tx.query(
            "SELECT seq, op FROM feed
             WHERE from_area = ANY($1) AND seq > $2 AND seq <= $3 AND replica != $4
             ORDER BY seq",
            &[
                &from,
                &(after as i64),
                &(until as i64),
                &self.replica.as_bytes().as_slice(),
            ],
        )?)
    }

    fn last_move(&mut self, id: &str) -> Result<Option<String>> {
        Ok(self
            .tx
            .query_opt(
                "SELECT area FROM feed WHERE moved = $1 ORDER BY seq DESC LIMIT 1",
                &[&id],
            )?
            .and_then(|r| r.get::<_, Option<String>>(0)))
    }

    fn moves_into(
        &mut self,
        into: &BTreeSet<String>,
        after: u64,
        until: u64,
    ) -> Result<Vec<crate::cursor::movein::MoveIn>> {
        let into: Vec<&str> = into.iter().map(String::as_str).collect();
        let rows = self.tx.query(
            "SELECT seq, op, from_area FROM feed
             WHERE area = ANY($1) AND from_area IS NOT NULL
               AND seq > $2 AND seq <= $3 AND replica != $4
             ORDER BY seq",
            &[
                &into,
                &(after as i64),
                &(until as i64),
                &self.replica.as_bytes().as_slice(),
            ],
        )?;
        rows.into_iter()
            .map(|r| {
                let seq: i64 = r.try_get(0)?;
                let body: &[u8] = r.try_get(1)?;
                let from: Option<String> = r.try_get(2)?;
                Ok((seq as u64, from, Op::decode(body)?))
            })
            .collect()
    }

    fn moves_of(&mut self, id: &str) -> Result<Vec<crate::cursor::movein::Move>> {
        let rows = self.tx.query(
            "SELECT seq, from_area, area FROM feed WHERE moved = $1 ORDER BY seq",
            &[&id],
        )?;
        rows.into_iter()
            .map(|r| {
                let seq: i64 = r.try_get(0)?;
                Ok((seq as u64, r.try_get(1)?, r.try_get(2)?))
            })
            .collect()
    }

    fn end(&mut self) -> Result<u64> {
        let end: i64 = self
            .tx
            .query_one("SELECT coalesce(max(seq), 0) FROM feed", &[])?
            .try_get(0)?;
        Ok(end as u64)
    }
}
