//! The feed in the SQLite file: filing rows, and reading a pull page's snapshot of it.
//!
//! The feed holds only the operation's dot and area; the operation itself is read from the
//! core's `oplog` in the same file (a join), so a push's feed rows commit with its merge.

use crate::cursor::FeedSnapshot;
use crate::error::{Result, ServerError};
use crate::storage::FeedRow;
use doorstep_core::Op;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::BTreeSet;
use uuid::Uuid;

pub(super) fn insert_feed(conn: &Connection, row: &FeedRow<'_>) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO feed (replica, counter, area, from_area, moved) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT DO NOTHING",
    )?
    .execute(params![
        row.op.replica.0.as_bytes().as_slice(),
        row.op.counter as i64,
        row.area,
        row.from,
        row.moved()
    ])?;
    Ok(())
}

/// The moves in the feed, read in the batch's own transaction (the same file).
pub(super) struct SqliteMoves<'a>(pub(super) &'a Connection);

impl crate::scope::Moves for SqliteMoves<'_> {
    fn moves_of(&mut self, id: &str) -> Result<Vec<(String, Op)>> {
        let mut stmt = self.0.prepare_cached(
            "SELECT f.from_area, o.replica, o.counter, o.hlc, o.body
             FROM feed f JOIN oplog o ON o.replica = f.replica AND o.counter = f.counter
             WHERE f.moved = ?1 AND f.from_area IS NOT NULL ORDER BY f.seq",
        )?;
        let mut rows = stmt.query([id])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let from: String = row.get(0)?;
            let replica: Vec<u8> = row.get(1)?;
            let body: Vec<u8> = row.get(4)?;
            out.push((
                from,
                Op::from_log(&replica, row.get(2)?, row.get(3)?, &body)?,
            ));
        }
        Ok(out)
    }
}

/// Feed rows joined with their operations.
pub(super) fn feed_ops(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<(u64, Op)>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(args)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let replica: Vec<u8> = row.get(1)?;
        let body: Vec<u8> = row.get(4)?;
        let op = Op::from_log(&replica, row.get(2)?, row.get(3)?, &body)?;
        out.push((seq as u64, op));
    }
    Ok(out)
}

/// The feed in one read transaction, for [`crate::cursor::pull_page`]; leaves out `replica`'s rows.
pub(super) struct SqliteFeed<'a> {
    pub(super) conn: &'a Connection,
    pub(super) replica: Uuid,
}

impl FeedSnapshot for SqliteFeed<'_> {
    fn area_rows(
        &mut self,
        area: &str,
        after: u64,
        until: u64,
        n: usize,
    ) -> Result<Vec<(u64, Op)>> {
        feed_ops(
            self.conn,
            "SELECT f.seq, o.replica, o.counter, o.hlc, o.body
             FROM feed f JOIN oplog o ON o.replica = f.replica AND o.counter = f.counter
             WHERE f.area = ?1 AND f.seq > ?2 AND f.seq <= ?3 AND f.replica != ?5
             ORDER BY f.seq LIMIT ?4",
            params![
                area,
                after as i64,
                until as i64,
                n as i64,
                self.replica.as_bytes().as_slice()
            ],
        )
    }

    fn rows_after(
        &mut self,
        areas: &BTreeSet<String>,
        after: u64,
        n: usize,
    ) -> Result<Vec<(u64, Op)>> {
        let areas_json =
            serde_json::to_string(areas).map_err(|e| ServerError::Internal(e.to_string()))?;
        // The page ends at the n-th row: found by walking each area's index range (and the
        // reference data's), so the query below reads only the page's rows. Left to itself,
        // SQLite gathers every row of the areas after the cursor and sorts them (a new
        // device's first page then costs the whole feed).
        let until = page_end(self.conn, areas, after, n, self.replica)?;
        feed_ops(
            self.conn,
            "SELECT f.seq, o.replica, o.counter, o.hlc, o.body
             FROM feed f JOIN oplog o ON o.replica = f.replica AND o.counter = f.counter
             WHERE f.seq > ?1 AND f.seq <= ?5
               AND (f.area IS NULL OR f.area IN (SELECT value FROM json_each(?2)))
               AND f.replica != ?4
             ORDER BY f.seq LIMIT ?3",
            params![
                after as i64,
                areas_json,
                n as i64,
                self.replica.as_bytes().as_slice(),
                until
            ],
        )
    }

    fn own_rows(&mut self, after: u64, n: usize) -> Result<Vec<Op>> {
        let rows = feed_ops(
            self.conn,
            "SELECT f.seq, o.replica, o.counter, o.hlc, o.body
             FROM feed f JOIN oplog o ON o.replica = f.replica AND o.counter = f.counter
             WHERE f.replica = ?1 AND f.counter > ?2
             ORDER BY f.counter LIMIT ?3",
            params![self.replica.as_bytes().as_slice(), after as i64, n as i64],
        )?;
        Ok(rows.into_iter().map(|(_, op)| op).collect())
    }

    fn moves_from(
        &mut self,
        from: &BTreeSet<String>,
        after: u64,
        until: u64,
    ) -> Result<Vec<(u64, Op)>> {
        let from_json =
            serde_json::to_string(from).map_err(|e| ServerError::Internal(e.to_string()))?;
        feed_ops(
            self.conn,
            "SELECT f.seq, o.replica, o.counter, o.hlc, o.body
             FROM feed f JOIN oplog o ON o.replica = f.replica AND o.counter = f.counter
             WHERE f.from_area IN (SELECT value FROM json_each(?1))
               AND f.seq > ?2 AND f.seq <= ?3 AND f.replica != ?4
             ORDER BY f.seq",
            params![
                from_json,
                after as i64,
                until as i64,
                self.replica.as_bytes().as_slice()
            ],
        )
    }

    fn last_move(&mut self, id: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached("SELECT area FROM feed WHERE moved = ?1 ORDER BY seq DESC LIMIT 1")?
            .query_row([id], |r| r.get::<_, Option<String>>(0))
            .optional()?
            .flatten())
    }

    fn moves_into(
        &mut self,
        into: &BTreeSet<String>,
        after: u64,
        until: u64,
    ) -> Result<Vec<crate::cursor::movein::MoveIn>> {
        let into_json =
            serde_json::to_string(into).map_err(|e| ServerError::Internal(e.to_string()))?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT f.seq, f.from_area, o.replica, o.counter, o.hlc, o.body
             FROM feed f JOIN oplog o ON o.replica = f.replica AND o.counter = f.counter
             WHERE f.area IN (SELECT value FROM json_each(?1)) AND f.from_area IS NOT NULL
               AND f.seq > ?2 AND f.seq <= ?3 AND f.replica != ?4
             ORDER BY f.seq",
        )?;
        let mut rows = stmt.query(params![
            into_json,
            after as i64,
            until as i64,
            self.replica.as_bytes().as_slice()
        ])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            let from: Option<String> = row.get(1)?;
            let replica: Vec<u8> = row.get(2)?;
            let body: Vec<u8> = row.get(5)?;
            let op = Op::from_log(&replica, row.get(3)?, row.get(4)?, &body)?;
            out.push((seq as u64, from, op));
        }
        Ok(out)
    }

    fn moves_of(&mut self, id: &str) -> Result<Vec<crate::cursor::movein::Move>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, from_area, area FROM feed WHERE moved = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn end(&mut self) -> Result<u64> {
        // SQLite has one writer, so no lower sequence number can commit later.
        let end: i64 = self
            .conn
            .query_row("SELECT coalesce(max(seq), 0) FROM feed", [], |r| r.get(0))?;
        Ok(end as u64)
    }
}

/// The feed `seq` of the `n`-th row after `after` that a device of `replica` is sent from
/// `areas` and the reference data (area NULL), or `i64::MAX` when there are fewer than `n`:
/// the `n` smallest of each area's first `n` rows, each read along the `(area, seq)` index.
fn page_end(
    conn: &Connection,
    areas: &BTreeSet<String>,
    after: u64,
    n: usize,
    replica: Uuid,
) -> Result<i64> {
    let mut seqs: Vec<i64> = Vec::new();
    let replica = replica.as_bytes().as_slice();
    let mut reference = conn.prepare_cached(
        "SELECT seq FROM feed WHERE area IS NULL AND seq > ?1 AND replica != ?2
         ORDER BY seq LIMIT ?3",
    )?;
    for seq in reference.query_map(params![after as i64, replica, n as i64], |r| r.get(0))? {
        seqs.push(seq?);
    }
    let mut by_area = conn.prepare_cached(
        "SELECT seq FROM feed WHERE area = ?1 AND seq > ?2 AND replica != ?3
         ORDER BY seq LIMIT ?4",
    )?;
    for area in areas {
        for seq in
            by_area.query_map(params![area, after as i64, replica, n as i64], |r| r.get(0))?
        {
            seqs.push(seq?);
        }
        // Keep only the n smallest so far.
        if seqs.len() > n {
            seqs.select_nth_unstable(n - 1);
            seqs.truncate(n);
        }
    }
    if seqs.len() < n {
        return Ok(i64::MAX);
    }
    Ok(seqs.into_iter().max().unwrap_or(i64::MAX))
}
